"""Retention: how long events are kept, and pruning what is older.

An event is kept `EVENTFEED_RETENTION_DAYS` days (default 7), or as long as the most specific
override of its name says (an exact name beats a prefix, a longer prefix a shorter one), longer or
shorter than the default. Overrides come from `EVENTFEED_RETENTION_OVERRIDES` and from the storage
page; the page's win for the same pattern.

Retention works in whole UTC days, the partitions' width: a day's events of a name go once the
whole day is older than the name's retention, so an event is kept at least its retention and less
than a day more. Every count bucket (a minute to an hour) lies inside one day, so the counts that
histograms read lose exactly the buckets of the events that go.

On PostgreSQL a day whose events all go is dropped as a partition, with its counts (instant,
nothing to vacuum); a day where most go is rewritten with the rows that stay (`partitions.keep_only`); a day where few
go has those deleted in batches. On SQLite the rows are deleted in batches of `BATCH`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from . import partitions
from .models import Event, EventCount, EventResource, RetentionOverride

log = logging.getLogger(__name__)

BATCH = 5_000
# A partly expiring day is rewritten (its kept rows copied) when at least this share of it goes.
REWRITE_SHARE = 0.5
MAX_DAYS = 36_500
PATTERN = re.compile(r"^[^\s*]+\*?$")
PATTERN_RULE = "must be an event name, or a prefix ending in * (acme.audit.*), without spaces"
# pg_try_advisory_lock key: one pruner at a time ("evfr").
PRUNE_LOCK = 0x65766672


@dataclass(frozen=True)
class Rule:
    pattern: str
    days: int
    source: str  # "environment" or "page"

    def matches(self, name: str) -> bool:
        if self.pattern.endswith("*"):
            return name.startswith(self.pattern[:-1])
        return name == self.pattern

    @property
    def specificity(self) -> tuple[int, int]:
        # An exact name beats any prefix; a longer prefix beats a shorter one.
        return (0 if self.pattern.endswith("*") else 1, len(self.pattern))


def pattern_problem(pattern: str) -> str | None:
    if not PATTERN.match(pattern or "") or pattern == "*":
        return PATTERN_RULE
    if len(pattern) > 1024:
        return "must be at most 1,024 characters"
    return None


def days_problem(days) -> str | None:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        return f"must be a whole number of days from 1 to {MAX_DAYS:,}"
    return None


# -- overrides set on the storage page -----------------------------------------------------------

def _override_resource(pattern: str) -> dict[str, str]:
    return {"prefect.resource.id": f"eventfeed.retention-override.{pattern}", "prefect.resource.name": pattern}


def save_override(pattern: str, days: int, user=None) -> RetentionOverride:
    """Keep events named `pattern` `days` days (a new override, or a change of one), audited."""
    from eventfeed import audit

    with transaction.atomic():
        override, created = RetentionOverride.objects.select_for_update().get_or_create(
            pattern=pattern, defaults={"days": days, "updated_by": user})
        if created:
            audit.record("retention-override.created", _override_resource(pattern), {"pattern": pattern, "days": days})
        elif override.days != days:
            changed = audit.changes({"days": override.days}, {"days": days})
            override.days, override.updated_by = days, user
            override.save(update_fields=["days", "updated_by", "updated"])
            audit.record("retention-override.updated", _override_resource(pattern), {"pattern": pattern, "changed": changed})
    return override


def delete_override(override: RetentionOverride) -> None:
    from eventfeed import audit

    with transaction.atomic():
        audit.record("retention-override.deleted", _override_resource(override.pattern),
                     {"pattern": override.pattern, "days": override.days})
        override.delete()


@dataclass
class Policy:
    default: int
    rules: list[Rule]

    @classmethod
    def current(cls) -> "Policy":
        by_pattern = {p: Rule(p, d, "environment") for p, d in settings.EVENTFEED_RETENTION_OVERRIDES.items()}
        for pattern, days in RetentionOverride.objects.values_list("pattern", "days"):
            by_pattern[pattern] = Rule(pattern, days, "page")
        rules = sorted(by_pattern.values(), key=lambda r: r.specificity, reverse=True)
        return cls(settings.EVENTFEED_RETENTION_DAYS, rules)

    def rule_for(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.matches(name)), None)

    def days_for(self, name: str) -> int:
        rule = self.rule_for(name)
        return rule.days if rule else self.default

    @property
    def shortest(self) -> int:
        return min([self.default, *(r.days for r in self.rules)])

    @property
    def longest(self) -> int:
        return max([self.default, *(r.days for r in self.rules)])

    def expires(self, day: date, days: int) -> datetime:
        """When a day's events kept `days` days go: once the whole day is that old."""
        return partitions.bounds(day)[1] + timedelta(days=days)


@dataclass
class DayPlan:
    day: date
    action: str  # "drop", "rewrite", "delete"
    # The names that go, or None for every event of the day.
    names: list[str] | None
    events: int
    estimated: bool = False
    kept: list[str] = field(default_factory=list)

    def describe(self) -> str:
        count = f"~{self.events:,}" if self.estimated else f"{self.events:,}"
        what = "all events" if self.names is None else ", ".join(self.names)
        how = {"drop": "drop the day's partitions", "rewrite": "rewrite the day keeping " + ", ".join(self.kept),
               "delete": f"delete in batches of {BATCH:,}"}[self.action]
        return f"{self.day}: {count} events ({what}): {how}"


# -- what is stored, by day --------------------------------------------------------------------

def _names_in_day(day: date) -> list[str]:
    start, end = partitions.bounds(day)
    table = Event._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A loose index scan of ev_event_occurred: one probe per distinct name, not a read of
            # the day's rows.
            cursor.execute(
                f"""WITH RECURSIVE names(event) AS (
                      (SELECT event FROM {table} WHERE occurred >= %s AND occurred < %s ORDER BY event LIMIT 1)
                      UNION ALL
                      SELECT (SELECT e.event FROM {table} e WHERE e.event > n.event AND e.occurred >= %s
                              AND e.occurred < %s ORDER BY e.event LIMIT 1) FROM names n WHERE n.event IS NOT NULL)
                    SELECT event FROM names WHERE event IS NOT NULL""",
                [start, end, start, end],
            )
        else:
            cursor.execute(
                f"SELECT DISTINCT event FROM {table} WHERE occurred >= %s AND occurred < %s",
                [connection.ops.adapt_datetimefield_value(start), connection.ops.adapt_datetimefield_value(end)],
            )
        return [row[0] for row in cursor.fetchall()]


def _count(day: date, names: list[str] | None) -> int:
    start, end = partitions.bounds(day)
    events = Event.objects.filter(occurred__gte=start, occurred__lt=end)
    if names is not None:
        events = events.filter(event__in=names)
    return events.count()


def _stored_days(last: date) -> list[date]:
    """Days up to `last` that may hold events: the partitions, or on SQLite the days found by
    jumping from one stored event to the next day's first (an index probe per day)."""
    if partitions.enabled():
        return sorted(d for d in partitions.existing_days() if d <= last)
    days = []
    start = None
    while True:
        events = Event.objects.order_by("occurred")
        if start is not None:
            events = events.filter(occurred__gte=start)
        first = events.values_list("occurred", flat=True).first()
        if first is None or partitions.day_of(first) > last:
            return days
        day = partitions.day_of(first)
        days.append(day)
        start = partitions.bounds(day)[1]


def plan(now: datetime | None = None, policy: Policy | None = None) -> list[DayPlan]:
    """What pruning now would remove, day by day, oldest first."""
    now = now or timezone.now()
    policy = policy or Policy.current()
    last = partitions.day_of(now - timedelta(days=policy.shortest)) - timedelta(days=1)
    out = []
    for day in _stored_days(last):
        if policy.expires(day, policy.longest) <= now:
            # Every name's retention is over: no need to know which names the day holds.
            out.append(_whole_day(day))
            continue
        names = _names_in_day(day)
        going = sorted(n for n in names if policy.expires(day, policy.days_for(n)) <= now)
        if not going:
            continue
        if len(going) == len(names):
            out.append(_whole_day(day))
            continue
        kept = sorted(set(names) - set(going))
        removed = _count(day, going)
        action = "delete"
        if partitions.enabled() and removed >= REWRITE_SHARE * (removed + _count(day, kept)):
            action = "rewrite"
        out.append(DayPlan(day, action, going, removed, kept=kept))
    return out


def _whole_day(day: date) -> DayPlan:
    if partitions.enabled():
        return DayPlan(day, "drop", None, partitions.estimated_rows(day), estimated=True)
    return DayPlan(day, "delete", None, _count(day, None))


# -- removing ----------------------------------------------------------------------------------

def _forget_counts(day: date, names: list[str] | None) -> None:
    """The day's count buckets of the names that go, so histograms match what is kept."""
    start, end = partitions.bounds(day)
    counts = EventCount.objects.filter(bucket__gte=start, bucket__lt=end)
    if names is not None:
        counts = counts.filter(event__in=names)
    counts._raw_delete(counts.db)


def _delete_in_batches(day: date, names: list[str] | None) -> int:
    start, end = partitions.bounds(day)
    removed = 0
    while True:
        with transaction.atomic():
            events = Event.objects.filter(occurred__gte=start, occurred__lt=end)
            if names is not None:
                events = events.filter(event__in=names)
            ids = list(events.values_list("id", flat=True)[:BATCH])
            if not ids:
                return removed
            rows = EventResource.objects.filter(event_id__in=ids)
            if partitions.enabled():
                rows = rows.filter(occurred__gte=start, occurred__lt=end)
            rows._raw_delete(rows.db)
            gone = Event.objects.filter(id__in=ids, occurred__gte=start, occurred__lt=end)
            removed += gone._raw_delete(gone.db)


def apply(plans: list[DayPlan], say=None) -> None:
    """Carry out the plans: every dropped day at once, then each rewrite and delete."""
    dropped = [p.day for p in plans if p.action == "drop"]
    if dropped:
        gone, removed = partitions.drop(dropped)
        if say:
            say(f"dropped {len(dropped)} day(s): gone from every query in {gone:.2f} s, their files removed in {removed:.2f} s more")
    for p in plans:
        if p.action == "rewrite":
            # The day's counts are rewritten with its events: only the kept names' remain.
            partitions.keep_only(p.day, p.kept)
        elif p.action == "delete":
            p.events = _delete_in_batches(p.day, p.names)
            with transaction.atomic():
                _forget_counts(p.day, p.names)


def prune(now: datetime | None = None, *, dry_run: bool = False, out=None) -> list[DayPlan]:
    """Remove what retention says has expired; `out` is told each day's plan as it goes.

    On PostgreSQL one pruner runs at a time (an advisory lock): a second returns at once.
    """
    now = now or timezone.now()
    say = out or (lambda line: log.info("prune: %s", line))
    if partitions.enabled() and not dry_run:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [PRUNE_LOCK])
            if not cursor.fetchone()[0]:
                say("another process is pruning; nothing done")
                return []
    try:
        plans = plan(now)
        for p in plans:
            say(("would " if dry_run else "") + p.describe())
        if not dry_run:
            apply(plans, say)
        if partitions.enabled() and not dry_run:
            partitions.ensure_ahead(now)
        return plans
    finally:
        if partitions.enabled() and not dry_run:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [PRUNE_LOCK])


async def prune_forever() -> None:
    """Prune now and every EVENTFEED_PRUNE_EVERY_MINUTES (the automation worker runs this, so
    quickstart, which starts that worker, prunes too). A failure is logged and retried later."""
    from asgiref.sync import sync_to_async

    while True:
        try:
            await sync_to_async(_prune_and_close, thread_sensitive=False)()
        except Exception:
            log.exception("prune: failed; trying again in %d minutes", settings.EVENTFEED_PRUNE_EVERY_MINUTES)
        await asyncio.sleep(settings.EVENTFEED_PRUNE_EVERY_MINUTES * 60)


def _prune_and_close() -> None:
    try:
        prune()
    finally:
        connection.close()
