"""Read queries beside the models: counts and histograms over a filter."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection, connections
from django.db.models import Case, Count, F, FloatField, Func, IntegerField, Max, Min, Q, Sum, Value, When
from django.db.models.functions import Floor

from .filters import EventFilter
from .models import ROLLUP_WIDTHS, Event, EventCount, EventResource, bucket_start
from .wire import iso

# Prefect aligns count-by buckets to this instant, so equal requests give equal buckets.
PIVOT = datetime(2024, 4, 1, tzinfo=dt_timezone.utc)
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
MAX_BUCKETS = 1000
MAX_GROUPS = 1000
# The read API's `total` counts at most this many: beyond it, it says "at least".
COUNT_CAP = 1_000


def capped_count(f: EventFilter, cap: int = COUNT_CAP) -> int:
    """The number of matching events, counted up to `cap` (never a full-table COUNT)."""
    return f.count_up_to(cap)


class Epoch(Func):
    """Seconds since 1970 of a datetime column, as a float, on SQLite and PostgreSQL."""

    output_field = FloatField()
    postgresql = "EXTRACT(EPOCH FROM {})::float8"
    sqlite = "((julianday({}) - 2440587.5) * 86400.0)"

    def as_sql(self, compiler, conn, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return (self.postgresql if conn.vendor == "postgresql" else self.sqlite).format(sql), params


class WholeSeconds(Epoch):
    """The same of a column holding whole seconds, exactly (SQLite's julianday is a float of
    days, off by up to a millisecond)."""

    output_field = IntegerField()
    postgresql = "EXTRACT(EPOCH FROM {})::bigint"
    sqlite = "CAST(strftime('%%s', {}) AS INTEGER)"


@dataclass
class Bucket:
    index: int
    start: datetime
    end: datetime
    count: int
    # Events of each name in the bucket, when asked for (the feed's histogram colours by them).
    names: Counter | None = None

    def as_prefect(self) -> dict:
        return {
            "value": str(self.index),
            "label": self.start.isoformat(),
            "count": self.count,
            "start_time": iso(self.start),
            "end_time": iso(self.end - timedelta(microseconds=1)),
        }


def bucket_index(moment: datetime, seconds: float) -> int:
    """The index (relative to PIVOT) of the `seconds`-wide bucket holding `moment`, as the
    database computes it for events (_raw_counts)."""
    return math.floor((moment - PIVOT).total_seconds() / seconds)


def bucket_span(since: datetime, until: datetime, seconds: float) -> tuple[int, int]:
    """First and last bucket index covering [since, until]."""
    return bucket_index(since, seconds), bucket_index(until, seconds)


def _raw_counts(f: EventFilter, seconds: float, by_name: bool = False) -> Counter:
    """Bucket index (or (index, event name) `by_name`) → events, counted from the events themselves."""
    pivot = PIVOT.timestamp()
    rows = (
        f.count_queryset()
        .annotate(bucket=Floor((Epoch(F("occurred")) - pivot) / seconds))
        .values("bucket", *(("event",) if by_name else ()))
        .annotate(n=Count("pk"))
        .order_by()
    )
    return Counter({((int(r["bucket"]), r["event"]) if by_name else int(r["bucket"])): r["n"] for r in rows})


def _rollup_width(f: EventFilter, seconds: float) -> int | None:
    """The widest EventCount width that tiles buckets of `seconds`, if the filter allows."""
    if not f.names_only:
        return None
    for width in sorted(ROLLUP_WIDTHS, reverse=True):
        if seconds % width == 0:
            return width
    return None


def _whole_buckets(since: datetime, until: datetime, width: int) -> tuple[datetime, datetime]:
    """The part of [since, until] made of whole EventCount buckets: [start, end)."""
    epoch = since.timestamp()
    start = datetime.fromtimestamp(math.ceil(epoch / width) * width, dt_timezone.utc)
    end = bucket_start(until, width)
    return start, end


def _rolled_up_counts(f: EventFilter, seconds: float, width: int, by_name: bool = False) -> Counter:
    """Bucket index (or (index, name)) → events: whole EventCount buckets inside the range,
    events at its edges."""
    start, end = _whole_buckets(f.since, f.until, width)
    if start >= end:
        return _raw_counts(f, seconds, by_name)
    # Grouped by the histogram's bucket in the database: 7 days of hourly counts by name are
    # 8,000 rows, and reading each one's time cost the histogram 60 ms. Bucket starts are whole
    # seconds, which the float division keeps exact.
    rows = (
        EventCount.objects.filter(width=width, bucket__gte=start, bucket__lt=end)
        .filter(f.names_q(connection.vendor))
        .annotate(index=Floor((WholeSeconds(F("bucket")) - int(PIVOT.timestamp())) / float(seconds)))
        .values("index", *(("event",) if by_name else ()))
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts = Counter()
    for r in rows:
        index = int(r["index"])
        counts[(index, r["event"]) if by_name else index] += r["n"]
    # The edges are less than one bucket wide: count those events exactly.
    counts.update(_raw_counts(replace(f, until=start - timedelta(microseconds=1)), seconds, by_name))
    counts.update(_raw_counts(replace(f, since=end), seconds, by_name))
    return counts


def count_by_time(f: EventFilter, seconds: float, by_name: bool = False) -> list[Bucket]:
    """Event counts in buckets of `seconds`, aligned to PIVOT, zero-filled over the filter's
    time range (which must be bounded). Filters of time and names only read EventCount.
    `by_name` also fills each bucket's `names`."""
    width = _rollup_width(f, seconds)
    counts = _rolled_up_counts(f, seconds, width, by_name) if width else _raw_counts(f, seconds, by_name)
    return _zero_filled(f, seconds, counts, by_name)


def _zero_filled(f: EventFilter, seconds: float, counts: Counter, by_name: bool) -> list[Bucket]:
    """Buckets over the filter's range from counts by bucket index (or (index, name))."""
    first, last = bucket_span(f.since, f.until, seconds)
    names: dict[int, Counter] = {}
    if by_name:
        for (index, name), n in counts.items():
            names.setdefault(index, Counter())[name] += n
        counts = Counter({index: sum(c.values()) for index, c in names.items()})
    out = []
    for index in range(first, last + 1):
        start = PIVOT + timedelta(seconds=index * seconds)
        bucket = Bucket(index - first, start, start + timedelta(seconds=seconds), counts.get(index, 0))
        if by_name:
            bucket.names = names.get(index, Counter())
        out.append(bucket)
    if out:
        # The last bucket ends where the range ends, as Prefect clips it.
        out[-1].end = min(out[-1].end, f.until + timedelta(microseconds=1))
    return out


def count_by_event(f: EventFilter, limit: int = MAX_GROUPS) -> list[dict]:
    rows = (
        f.count_queryset()
        .values("event")
        .annotate(n=Count("pk"), first=Min("occurred"), last=Max("occurred"))
        .order_by("-n", "event")[:limit]
    )
    return [
        {"value": r["event"], "label": r["event"], "count": r["n"], "start_time": iso(r["first"]), "end_time": iso(r["last"])}
        for r in rows
    ]


def count_by_resource(f: EventFilter, limit: int = MAX_GROUPS) -> list[dict]:
    rows = list(
        f.count_queryset()
        .values("resource_id")
        .annotate(n=Count("pk"), first=Min("occurred"), last=Max("occurred"))
        .order_by("-n", "resource_id")[:limit]
    )
    # The display name is a label, not a column: read it from each group's newest event.
    labels = {}
    for start in range(0, len(rows), 200):
        newest = Q(pk__in=[])
        for r in rows[start : start + 200]:
            newest |= Q(resource_id=r["resource_id"], occurred=r["last"])
        labels.update(Event.objects.filter(newest).values_list("resource_id", "resource"))
    out = []
    for r in rows:
        resource = labels.get(r["resource_id"], {})
        label = resource.get("prefect.resource.name") or resource.get("prefect.name") or r["resource_id"]
        out.append(
            {"value": r["resource_id"], "label": label, "count": r["n"], "start_time": iso(r["first"]), "end_time": iso(r["last"])}
        )
    return out


# Bucket sizes a person reads without arithmetic; the histogram takes the smallest that keeps
# the range under HISTOGRAM_MAX_BARS (15 m → 15 s, 1 h → 1 min, 24 h → 15 min, 7 d → 3 h,
# 30 d → 12 h).
NICE_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400, 604800)
HISTOGRAM_MAX_BARS = 100


def histogram_bucket_seconds(since: datetime, until: datetime) -> int:
    span = max((until - since).total_seconds(), 1)
    for seconds in NICE_BUCKETS:
        if span / seconds <= HISTOGRAM_MAX_BARS:
            return seconds
    # Ranges of years: whole days, still at most HISTOGRAM_MAX_BARS bars.
    return math.ceil(span / HISTOGRAM_MAX_BARS / 86400) * 86400


def histogram(f: EventFilter) -> tuple[int, list[Bucket], bool]:
    """The bucket size and zero-filled counts over the filter's (bounded) time range, each
    bucket with its counts by event name, and whether they are estimated.

    Exact when the counts serve the filter (time and names) or an index finds its few events;
    otherwise estimated from a bounded sample (FilterSample), so that a filter matching a
    million events is not counted one by one."""
    seconds = histogram_bucket_seconds(f.since, f.until)
    if f.names_only:
        return seconds, count_by_time(f, seconds, by_name=True), False
    rows = f.few_matches(EXACT_CAP, ("occurred", "event"))
    if rows is not None:
        counts = Counter((bucket_index(t, seconds), name) for t, name in rows)
        return seconds, _zero_filled(f, seconds, counts, by_name=True), False
    sample = FilterSample.draw(f, SAMPLE_PER_BUCKET, ("event",))
    buckets = sample.estimated_buckets()
    return seconds, buckets, not sample.exact


# -- bounded counts for filters the rollups cannot serve -------------------------------------------

# Above this many matching events a filter is estimated, not counted; under it, and when an index
# finds its events (exact resource ids), counting them is cheap.
EXACT_CAP = 2_000
# Events examined per histogram bucket (at most HISTOGRAM_MAX_BARS buckets) for an estimate.
SAMPLE_PER_BUCKET = 30


@dataclass
class FilterSample:
    """Events of a filter's range drawn to estimate what counting every match would say.

    The range is cut into the histogram's buckets. The filter's event-name part alone is counted
    exactly per bucket from EventCount (`population`); in each bucket the newest `per_bucket`
    events of that part are read (the whole bucket when it holds fewer), in one statement of
    index range scans, and the rest of the filter is tested on each. A match stands for
    population / read events of its bucket: a ratio estimate per bucket, so busy and quiet
    hours weigh what they should, and bursts inside a bucket cannot hide it. Every bucket read
    whole: exact.
    """

    f: EventFilter
    seconds: int
    population: list[Bucket]
    seen: Counter
    # (bucket index, *fields) of the sampled events that match the whole filter.
    rows: list[tuple]
    exact: bool

    @classmethod
    def draw(cls, f: EventFilter, per_bucket: int, fields: tuple = ()) -> "FilterSample":
        seconds = histogram_bucket_seconds(f.since, f.until)
        population = count_by_time(replace(f, resources=(), ids=(), text="", distinct=False), seconds)
        if sum(b.count for b in population) <= EXACT_CAP:
            # Few events in the range: reading them all costs no more than a sample.
            per_bucket = max(per_bucket, *(b.count for b in population))
        names = f.names_q(connection.vendor)
        end_of_range = f.until + timedelta(microseconds=1)
        first, _ = bucket_span(f.since, f.until, seconds)

        def part(lo: datetime, hi: datetime):
            in_bucket = Event.objects.filter(occurred__gte=lo, occurred__lt=hi)
            newest = in_bucket.filter(names).order_by("-occurred", "-id").values("pk")[:per_bucket]
            rest = f.condition(within=(lo, hi))
            # The rest of the filter is tested outside the LIMIT: inside it, PostgreSQL plans
            # its EXISTS for every event of the bucket and hashes all of a common resource's
            # events (a million) to answer thirty.
            match = Case(When(rest, then=Value(True)), default=Value(False)) if rest else Value(True)
            return in_bucket.filter(pk__in=newest).annotate(_match=match).values_list("occurred", "_match", *fields)

        spans = [(max(b.start, f.since), min(b.end, end_of_range)) for b in population if b.count]
        exact = all(b.count <= per_bucket for b in population)
        rows = _union_of_parts(part, spans)
        seen = Counter(bucket_index(row[0], seconds) - first for row in rows)
        matched = [(bucket_index(row[0], seconds) - first, *row[2:]) for row in rows if row[1]]
        return cls(f, seconds, population, seen, matched, exact)

    def weight(self, index: int) -> float:
        """How many events of its bucket one sampled event stands for."""
        read = self.seen.get(index, 0)
        return self.population[index].count / read if read else 0.0

    def estimated_buckets(self) -> list[Bucket]:
        """The population's buckets with estimated counts of the whole filter, and by name."""
        matched: dict[int, Counter] = {}
        for index, name, *_ in self.rows:
            matched.setdefault(index, Counter())[name] += 1
        out = []
        for i, b in enumerate(self.population):
            names = Counter({name: round(n * self.weight(i)) for name, n in matched.get(i, Counter()).items()})
            out.append(replace(b, names=names, count=sum(names.values())))
        return out


def _union_of_parts(part, spans: list[tuple[datetime, datetime]]) -> list[tuple]:
    """The rows of `part(lo, hi)` for every span, in one UNION ALL statement.

    Django builds and compiles the first part only; the others are its SQL with their own
    bounds in place of its bounds: at a hundred buckets, building each filter through the ORM
    cost several times the query. SQLite (laptop scale) takes the plain ORM union."""
    if not spans:
        return []
    if connection.vendor != "postgresql":
        parts = [part(lo, hi) for lo, hi in spans]
        return list(parts[0].union(*parts[1:], all=True))
    template = part(*spans[0])
    sql, params = template.query.sql_with_params()
    lo0, hi0 = spans[0]
    slots = [0 if p == lo0 else 1 if p == hi0 else None for p in params]
    all_params: list = []
    for span in spans:
        all_params += [p if slot is None else span[slot] for p, slot in zip(params, slots)]
    with connections[template.db].cursor() as cursor:
        cursor.execute(" UNION ALL ".join([f"({sql})"] * len(spans)), all_params)
        return cursor.fetchall()


def name_counts(f: EventFilter) -> list[tuple[str, int]]:
    """(event name, count) under `f`, busiest first; from EventCount hours when `f` allows."""
    if not (f.names_only and f.since and f.until):
        return [(r["value"], r["count"]) for r in count_by_event(f)]
    start, end = _whole_buckets(f.since, f.until, 3600)
    if start >= end:
        return [(r["value"], r["count"]) for r in count_by_event(f)]
    rows = (
        EventCount.objects.filter(width=3600, bucket__gte=start, bucket__lt=end)
        .filter(f.names_q(connection.vendor))
        .values("event")
        .annotate(n=Sum("count"))
        .order_by()
    )
    counts = Counter({r["event"]: r["n"] for r in rows})
    for edge in (replace(f, until=start - timedelta(microseconds=1)), replace(f, since=end)):
        counts.update({r["value"]: r["count"] for r in count_by_event(edge)})
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_GROUPS]


def event_names_by_namespace(f: EventFilter) -> list[dict]:
    """Stored event names with their counts under `f`, grouped by namespace (the name without
    its last segment), busiest namespace first: the feed's event-name picker."""
    groups: dict[str, dict] = {}
    for name, count in name_counts(f):
        namespace = name.rpartition(".")[0] or name
        group = groups.setdefault(namespace, {"namespace": namespace, "prefix": f"{namespace}.*", "count": 0, "names": []})
        group["count"] += count
        group["names"].append({"name": name, "count": count})
    return sorted(groups.values(), key=lambda g: (-g["count"], g["namespace"]))


# -- the event page ------------------------------------------------------------------------------

# Columns shown for the other events an event page lists (what it follows, what follows it):
# their payload and search words can be megabytes each.
SUMMARY_FIELDS = ("id", "occurred", "event", "resource_id", "resource")
AROUND = 10
MAX_FOLLOWING = 20


def arrived_after(f: EventFilter, after: tuple[datetime, uuid.UUID], limit: int) -> tuple[list[Event], bool]:
    """Events matching the filter that arrived after the cursor `(received, id)`, in arrival
    order, and whether there are more. A reconnecting page asks for this rather than for what
    occurred after its newest row: an event claiming a time far ahead would sit at the top and
    hide everything that arrived meanwhile."""
    t, last = after
    qs = replace(f, order="ASC").queryset().filter(Q(received__gt=t) | Q(received=t, id__gt=last)).order_by("received", "id")
    events: list[Event] = []
    seen: set[uuid.UUID] = set()
    # A resource join can repeat an event (see EventFilter.queryset): read a little more.
    for event in qs[: 2 * limit + 1]:
        if event.id not in seen:
            seen.add(event.id)
            events.append(event)
        if len(events) > limit:
            break
    return events[:limit], len(events) > limit


def event_for_page(pk: uuid.UUID) -> Event | None:
    # `words` repeats the payload as a word list and is never shown.
    return Event.objects.defer("words").filter(pk=pk).first()


def followed_event(event: Event) -> Event | None:
    """The event this one `follows`, if it is stored (retention or the producer may have lost it)."""
    if event.follows is None:
        return None
    return Event.objects.only(*SUMMARY_FIELDS).filter(pk=event.follows).first()


def following_events(event: Event, limit: int = MAX_FOLLOWING) -> tuple[list[Event], bool]:
    """Events whose `follows` is this event, oldest first (ev_follows index), and whether there
    are more than `limit`."""
    rows = list(Event.objects.only(*SUMMARY_FIELDS).filter(follows=event.id).order_by("occurred", "id")[: limit + 1])
    return rows[:limit], len(rows) > limit


@dataclass
class Neighbour:
    event_id: uuid.UUID
    occurred: datetime
    event_name: str
    # How the neighbour touches the resource: "" when it is its primary resource.
    role: str
    current: bool = False


def events_around(event: Event, n: int = AROUND) -> list[Neighbour]:
    """Up to `n` events before and `n` after this one that touch its primary resource (in any
    role), oldest first, this one included and marked.

    Two range scans of er_resource_occurred from this event's (occurred, id) outwards. The
    lone `occurred` bound repeats the keyset's first column so that it becomes the scan's start
    on PostgreSQL; the OR only breaks ties. An event touching the resource in two roles has two
    rows, so a few more rows are read than are shown.
    """
    t, pk = event.occurred, event.id
    rows = EventResource.objects.filter(resource_id=event.resource_id).values_list("event_id", "occurred", "event_name", "role")
    want = n + 5
    older = rows.filter(Q(occurred__lte=t) & (Q(occurred__lt=t) | Q(event_id__lt=pk))).order_by("-occurred", "-event_id")[:want]
    newer = rows.filter(Q(occurred__gte=t) & (Q(occurred__gt=t) | Q(event_id__gt=pk))).order_by("occurred", "event_id")[:want]
    before = _distinct_neighbours(older)[:n]
    after = _distinct_neighbours(newer)[:n]
    here = Neighbour(event.id, event.occurred, event.event, "", current=True)
    return [*reversed(before), here, *after]


def _distinct_neighbours(rows) -> list[Neighbour]:
    """One neighbour per event (rows of one event are adjacent in keyset order). Of its roles the
    first in alphabetical order is shown, so the primary one ("") wins and the choice is stable."""
    out: list[Neighbour] = []
    for event_id, occurred, name, role in rows:
        if out and out[-1].event_id == event_id:
            out[-1].role = min(out[-1].role, role)
            continue
        out.append(Neighbour(event_id, occurred, name, role))
    return out


def resource_names(ids) -> dict[str, str]:
    """Each id's `prefect.resource.name` from the newest event that touches it (primary or
    related), for sentences that name resources; ids never seen or without a name are left out.
    One range scan of er_resource_occurred per id: callers pass a trigger's few ids."""
    out = {}
    for resource_id in sorted(set(ids))[:50]:
        row = EventResource.objects.filter(resource_id=resource_id).order_by("-occurred").values_list("labels", flat=True).first()
        name = (row or {}).get("prefect.resource.name")
        if isinstance(name, str) and name:
            out[resource_id] = name
    return out
