"""What the storage page shows: where the space goes, and what retention removes next.

Every figure comes from something cheap: the partitions' sizes and row estimates from the
catalogue, event counts from the hourly EventCount buckets, bytes per name from a 1 % sample of
the rows. Nothing here reads every event.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection
from django.db.models import Sum
from django.db.models.functions import TruncDay

from . import partitions
from .models import Event, EventCount, EventResource
from .queries import count_by_resource
from .filters import EventFilter
from .retention import Policy, plan

TOP = 20


@dataclass
class Day:
    day: date
    events: int
    bytes: int | None  # both tables with their indexes; None on SQLite
    expires: datetime  # when the default retention removes the day


def _day_counts() -> Counter:
    rows = (
        EventCount.objects.filter(width=3600)
        .annotate(day=TruncDay("bucket"))
        .values("day")
        .annotate(n=Sum("count"))
        .order_by()
    )
    return Counter({r["day"].date(): r["n"] for r in rows})


def by_day(policy: Policy) -> list[Day]:
    """Newest day first. On PostgreSQL every partition is listed (days ahead included, empty)."""
    counts = _day_counts()
    sizes: dict[date, int] = {}
    if partitions.enabled():
        with connection.cursor() as cursor:
            for day in partitions.existing_days():
                names = [partitions.partition_name(table, day) for table, _, _ in partitions.TABLES]
                cursor.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname = ANY(%s)", [names])
                sizes[day] = int(cursor.fetchone()[0] or 0)
    days = set(counts) | set(sizes)
    return [Day(d, counts.get(d, 0), sizes.get(d), policy.expires(d, policy.default)) for d in sorted(days, reverse=True)]


@dataclass
class Name:
    name: str
    events: int
    share: float
    bytes: int | None  # estimated from a sample of rows (PostgreSQL)
    days: int  # its retention
    rule: str  # the override that sets it, or "" for the default


def _sampled_bytes() -> tuple[Counter, int]:
    """Row bytes per event name in a 1 % block sample, and the rows sampled."""
    if not partitions.enabled():
        return Counter(), 0
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT event, count(*), sum(pg_column_size(e.*)) FROM {Event._meta.db_table} e "
            "TABLESAMPLE SYSTEM (1) REPEATABLE (1) GROUP BY event"
        )
        rows = cursor.fetchall()
    return Counter({name: size for name, _, size in rows}), sum(n for _, n, _ in rows)


def by_name(policy: Policy, since: datetime | None = None) -> list[Name]:
    """Event names by how many are stored (since `since`, if given), biggest first."""
    counts = EventCount.objects.filter(width=3600)
    if since is not None:
        counts = counts.filter(bucket__gte=since)
    rows = counts.values("event").annotate(n=Sum("count")).order_by("-n", "event")
    total = sum(r["n"] for r in rows) or 1
    sampled, sample_rows = _sampled_bytes()
    sample_total = sum(sampled.values())
    # The sample's share of the rows scales its bytes to the whole table.
    scale = (sum(r["n"] for r in rows) / sample_rows) if sample_rows and since is None else None
    out = []
    for r in rows[:TOP]:
        rule = policy.rule_for(r["event"])
        size = int(sampled[r["event"]] * scale) if scale and sample_total else None
        out.append(Name(r["event"], r["n"], r["n"] / total, size, rule.days if rule else policy.default, rule.pattern if rule else ""))
    return out


def by_prefix(names: list[Name]) -> list[tuple[str, int, float]]:
    """(namespace.*, events, share): the names grouped without their last segment."""
    groups: Counter = Counter()
    for n in names:
        groups[(n.name.rpartition(".")[0] or n.name) + ".*"] += n.events
    total = sum(groups.values()) or 1
    return [(prefix, count, count / total) for prefix, count in groups.most_common(TOP)]


@dataclass
class Removal:
    when: datetime
    day: date
    what: str  # "all events", or the names/patterns that go


def next_removals(policy: Policy, days: list[Day], now: datetime, limit: int = 8) -> list[Removal]:
    """Overdue removals (the next prune's) first, then the coming ones, soonest first."""
    out = [Removal(now, p.day, "all events" if p.names is None else ", ".join(p.names)) for p in plan(now, policy)]
    overdue = {r.day for r in out}
    rules = sorted({policy.default, *(r.days for r in policy.rules)})
    coming = []
    for d in days:
        if d.day in overdue or not d.events:
            continue
        for days_kept in rules:
            when = policy.expires(d.day, days_kept)
            if when > now:
                covered = [r.pattern for r in policy.rules if r.days == days_kept]
                what = "events kept the default" if days_kept == policy.default else ""
                what = ", ".join(filter(None, [what, *covered]))
                coming.append(Removal(when, d.day, f"{what} ({days_kept} d)"))
    coming.sort(key=lambda r: r.when)
    return out + coming[: max(0, limit - len(out))]


def top_resources_last_day(now: datetime, limit: int = 10) -> list[dict]:
    """The resources that produced the most events in the last 24 hours."""
    return count_by_resource(EventFilter(since=now - timedelta(days=1), until=now), limit=limit)


def totals() -> dict:
    """Whole-store figures: events (estimated on PostgreSQL) and bytes of both tables."""
    if partitions.enabled():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE p.relname = %s), 0)::bigint, "
                "coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
                [Event._meta.db_table, [Event._meta.db_table, EventResource._meta.db_table]],
            )
            events, size = cursor.fetchone()
        return {"events": max(events, 0), "bytes": size, "estimated": True}
    return {"events": sum(_day_counts().values()), "bytes": None, "estimated": False}
