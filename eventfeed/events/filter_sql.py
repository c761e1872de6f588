"""The filter's database back end: an EventFilter as a queryset (feed pages, the read API,
backfills, counts, replays), with the same meaning as its `matches()` in Python.

`EventFilter` gets these methods from `FilterSQL`; `tests/test_filters_property.py` checks that
the two back ends select the same events.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING, Iterable, Iterator

from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, Value, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber, Substr
from django.db.models.lookups import Exact, IsNull, Regex, StartsWith

from .models import Event, EventResource
from .patterns import _kind, glob_regex
from .schema import RESOURCE_ID, RESOURCE_ROLE

if TYPE_CHECKING:
    from .filters import LabelCondition, ResourceCondition, TextQuery  # noqa: F401 (annotations)

Term = tuple[str, ...]


class FilterSQL:
    """The database half of EventFilter (which defines the fields these read)."""

    def _driver(self, vendor: str) -> ResourceCondition | None:
        """A related/any condition with exact ids, which can drive the query from the resources
        index (newest events of those resources, in order). Prefixes cannot: their range spans
        many resources and would need a sort of every match. SQLite plans the EXISTS form well
        enough at laptop scale."""
        if vendor != "postgresql" or self.distinct:
            return None
        for condition in self.resources:
            if condition.scope != "resource" and condition.ids and not condition.negate:
                return condition
        return None

    def queryset(self, *, after: tuple[datetime, uuid.UUID] | None = None):
        """Events matching the filter, in filter order, with the keyset cursor applied.

        With an exact or prefix resource condition, the query joins the resources table and
        orders by its copy of `occurred`, so the newest events of a resource are an index range
        scan. Such a join can repeat an event (an id prefix matching two of its tags). For a
        page or a capped count, `page()` and `count_up_to()` read the rows first instead
        (`_driven()`); aggregates (histograms, count-by) and backfills use this.
        """
        vendor = connection.vendor
        driver = self._driver(vendor)
        cond = Q()
        if driver is not None:
            occurred, pk, name = "resources__occurred", "resources__event_id", "resources__event_name"
            # Everything on the joined row goes into one filter() call, so Django uses one join.
            cond &= _row_q(replace(driver, labels=()), vendor, "resources__")
        else:
            occurred, pk, name = "occurred", "id", "event"

        if self.since is not None:
            cond &= Q(**{f"{occurred}__gte": self.since})
        if self.until is not None:
            cond &= Q(**{f"{occurred}__lte": self.until})
        # Exclusions stay on the events table: negated across the join they would become
        # subqueries.
        cond &= self.names_q(vendor, include=name, exclude="event")
        cond &= self._row_conditions(vendor, driver)
        if after is not None:
            cond &= _after_q(occurred, pk, after, self.order)
        # `words` is for the index only; read back, it would be split into a list on every row.
        qs = Event.objects.defer("words").filter(cond)
        if self.distinct:
            newest = Window(RowNumber(), partition_by=[F("resource_id")], order_by=[F("occurred").desc(), F("id").desc()])
            qs = qs.annotate(_nth=newest).filter(_nth=1)
        if self.order == "ASC":
            return qs.order_by(occurred, pk)
        return qs.order_by(f"-{occurred}", f"-{pk}")

    def _row_conditions(self, vendor: str, driver: ResourceCondition | None = None, within=None) -> Q:
        """Ids, resource conditions and text as conditions on one events row; the `driver`'s
        exact ids are left to the join that drives the query. `within` (start, end): the rows'
        times, known to lie there."""
        cond = Q(id__in=self.ids) if self.ids else Q()
        for condition in self.resources:
            if condition is driver and not condition.labels:
                continue
            if condition.negate:
                # NOT EXISTS, never a negated comparison: a missing label would make that NULL.
                cond &= ~Q(Exists(_resources_of_the_event(condition, vendor, within)))
                continue
            if condition.scope == "resource":
                # The primary resource is on the events row itself: no join, and the planner
                # can choose between the newest-first scan and the resource_id index.
                cond &= _primary_q(condition, vendor)
                continue
            cond &= Q(Exists(_resources_of_the_event(condition, vendor, within)))
        if self.text:
            cond &= text_q(self.text_query, "words", vendor)
        return cond

    def condition(self, within: tuple[datetime, datetime] | None = None) -> Q:
        """The filter but its time range, as a condition on one events row (no join, no order):
        for testing rows another index already chose, such as a sample (queries.FilterSample),
        whose times lie `within` [start, end) when given."""
        vendor = connection.vendor
        return self.names_q(vendor) & self._row_conditions(vendor, within=within)

    def few_matches(self, limit: int, fields: tuple = ()) -> list[tuple] | None:
        """Every matching event as a row of `fields`, when an index finds at most `limit`
        candidates (the resources index for a condition with exact ids, else the word index for
        free text with words it needs); None when it finds more or cannot.

        The candidates come from the resource rows alone (newest first, the index's order),
        then the events are read day by day with the whole filter: joined on the id alone, each
        would be looked for in every day's partition (two thousand cost a second at 30 days)."""
        vendor = connection.vendor
        driver = next((c for c in self.resources if (c.ids or c.pairs) and not c.negate), None)
        query = self.text_query if self.text else None
        if self.since is None or self.until is None:
            return None
        if driver is not None:
            keys = list(
                EventResource.objects.filter(_row_q(driver, vendor, ""), occurred__gte=self.since, occurred__lte=self.until)
                .filter(self.names_q(vendor, include="event_name", exclude="event_name"))
                .order_by("-occurred").values_list("event_id", "occurred")[: limit + 1]
            )
        elif query is not None and (query.any_of or query.required):
            # Words that must be there: the word index finds their events (unordered, so that
            # it may), and a common word stops the count at the limit.
            keys = list(
                Event.objects.filter(self.names_q(vendor), text_q(query, "words", vendor),
                                     occurred__gte=self.since, occurred__lte=self.until)
                .order_by().values_list("id", "occurred")[: limit + 1]
            )
        else:
            return None
        if len(set(keys)) > limit:
            return None
        by_day: dict = {}
        for event_id, occurred in keys:
            by_day.setdefault(occurred.date(), set()).add(event_id)
        parts = []
        for day, ids in sorted(by_day.items()):
            times = [t for e, t in keys if t.date() == day]
            lo, hi = min(times), max(times) + timedelta(microseconds=1)
            parts.append(Event.objects.filter(occurred__gte=lo, occurred__lt=hi, id__in=ids)
                         .filter(self.condition(within=(lo, hi))).values_list(*fields))
        if not parts:
            return []
        return list(parts[0].union(*parts[1:], all=True)) if len(parts) > 1 else list(parts[0])

    def names_q(self, vendor: str, include: str = "event", exclude: str = "event") -> Q:
        """The event-name part of the filter on the given fields (the event counts use it too)."""
        q = Q()
        if self.names or self.prefixes:
            exact = [Q(**{f"{include}__in": self.names})] if self.names else []
            q &= any_q(exact + [_startswith(include, p, vendor) for p in self.prefixes])
        if self.exclude_names:
            q &= ~Q(**{f"{exclude}__in": self.exclude_names})
        for prefix in self.exclude_prefixes:
            q &= ~_startswith(exclude, prefix, vendor)
        return q

    @property
    def names_only(self) -> bool:
        """Nothing but time and event names: the event counts can answer it."""
        return not (self.resources or self.text or self.ids or self.distinct)

    def page(self, *, limit: int, after: tuple[datetime, uuid.UUID] | None = None) -> tuple[list[Event], bool]:
        """Up to `limit` events after the cursor, and whether there are more."""
        driver = self._driver(connection.vendor)
        if driver is not None:
            events = list(islice(self._driven(driver, after, Event.objects.defer("words"), limit + 1), limit + 1))
            return events[:limit], len(events) > limit
        events: list[Event] = []
        seen: set[uuid.UUID] = set()
        cursor = after
        while True:
            want = limit + 1 - len(events)
            batch = list(self.queryset(after=cursor)[:want])
            for event in batch:
                if event.id not in seen:
                    seen.add(event.id)
                    events.append(event)
            if len(batch) < want or len(events) > limit:
                break
            cursor = (batch[-1].occurred, batch[-1].id)
        return events[:limit], len(events) > limit

    def count_queryset(self):
        """Matching events for aggregation (histograms, count-by): no order, no cursor."""
        return self.queryset().order_by()

    def count_up_to(self, cap: int) -> int:
        """The number of matching events, counted up to `cap`."""
        vendor = connection.vendor
        driver = self._driver(vendor)
        if driver is not None and not self._row_conditions(vendor, driver):
            # Nothing to check on the events themselves: their matching rows tell.
            return self._driver_rows(driver).values("event_id").distinct()[:cap].count()
        if driver is not None:
            ids = Event.objects.values_list("id", flat=True)
            return sum(1 for _ in islice(self._driven(driver, None, ids, cap, key=lambda i: i), cap))
        return self.count_queryset().values("pk")[:cap].count()

    def _driver_rows(self, driver: ResourceCondition):
        """The resource rows the `driver`'s ids and roles select, with the filter's names and
        times (each row has its event's)."""
        vendor = connection.vendor
        rows = EventResource.objects.filter(_row_q(replace(driver, labels=()), vendor, ""),
                                            self.names_q(vendor, include="event_name", exclude="event_name"))
        if self.since is not None:
            rows = rows.filter(occurred__gte=self.since)
        if self.until is not None:
            rows = rows.filter(occurred__lte=self.until)
        return rows

    def _driven(self, driver: ResourceCondition, after, events, first: int, key=attrgetter("id")) -> Iterator:
        """The matching events (from the queryset `events`, whose items have the id `key`), in
        filter order after the cursor, found from the `driver`'s resource rows.

        The rows come first, a chunk at a time (`first` of them, then more each time), newest
        first as the resources index holds them; then their events by (id, occurred), which
        PostgreSQL looks for in each one's own day. Joined in one query, the planner misjudged
        how many rows a resource has in each day's partition and read every row of a rare one
        with its event before sorting (130 ms at 2,000,000 events), and joined on the time as
        well it hashed a common one's million rows (seconds). The rest of the filter applies to
        the events; an event with two matching rows comes once."""
        vendor = connection.vendor
        rows = self._driver_rows(driver)
        order = ("occurred", "event_id") if self.order == "ASC" else ("-occurred", "-event_id")
        table = Event._meta.db_table
        seen: set[uuid.UUID] = set()
        chunk = first
        while True:
            keys = list((rows.filter(_after_q("occurred", "event_id", after, self.order)) if after else rows)
                        .order_by(*order).values_list("event_id", "occurred")[:chunk])
            if not keys:
                return
            # The rest of the filter, its resource probes bounded by the chunk's days, as in
            # few_matches (each probe planned over every day's partition cost more than it ran).
            times = [k[1] for k in keys]
            rest = self._row_conditions(vendor, driver, within=(min(times), max(times) + timedelta(microseconds=1)))
            # Each array as one literal: quoted element by element (Django binds on the client),
            # a thousand ids and times cost more than the queries.
            found = {key(e): e for e in events.filter(rest).extra(
                where=[f'("{table}"."id", "{table}"."occurred") IN (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[]))'],
                params=["{" + ",".join([str(k[0]) for k in keys]) + "}",
                        "{" + ",".join([t.isoformat() for t in times]) + "}"])}
            for event_id, _ in keys:
                event = found.get(event_id)
                if event is not None and event_id not in seen:
                    seen.add(event_id)
                    yield event
            if len(keys) < chunk:
                return
            after = (keys[-1][1], keys[-1][0])
            # Rows the rest of the filter refuses: read more of them at a time.
            chunk = min(chunk * 4, 4096)


def _resources_of_the_event(condition: ResourceCondition, vendor: str, within=None):
    """The outer event's resource rows that satisfy the condition. The rows' copy of `occurred`
    is matched too: on PostgreSQL each probe then reads one day's partition, not every day's, and
    with `within` the planner leaves the other days out of the plan (planning a probe of 30 days'
    partitions a hundred times cost more than running it)."""
    rows = EventResource.objects.filter(_row_q(condition, vendor, ""), event_id=OuterRef("pk"), occurred=OuterRef("occurred"))
    if within is not None:
        rows = rows.filter(occurred__gte=within[0], occurred__lt=within[1])
    return rows


def _after_q(occurred: str, pk: str, after: tuple[datetime, uuid.UUID], order: str) -> Q:
    """After the keyset cursor (time, id) in filter order."""
    t, last = after
    if order == "ASC":
        return Q(**{f"{occurred}__gte": t}) & (Q(**{f"{occurred}__gt": t}) | Q(**{f"{pk}__gt": last}))
    return Q(**{f"{occurred}__lte": t}) & (Q(**{f"{occurred}__lt": t}) | Q(**{f"{pk}__lt": last}))


def any_q(parts: Iterable[Q]) -> Q:
    """OR of the parts; an empty list matches nothing."""
    out = None
    for part in parts:
        out = part if out is None else out | part
    return out if out is not None else Q(pk__in=[])


def _startswith(field_name: str, prefix: str, vendor: str) -> Q:
    # SQLite's LIKE ignores ASCII case; comparing a leading substring keeps it exact, as in
    # Python and PostgreSQL (where LIKE 'p%' uses the pattern-ops index).
    if vendor == "sqlite":
        return Q(Exact(Substr(F(field_name), 1, len(prefix)), prefix))
    return Q(**{f"{field_name}__startswith": prefix})


def _pattern_q(expr, pattern: str, vendor: str) -> Q:
    kind = _kind(pattern)
    if kind == "exact":
        return Q(Exact(expr, pattern))
    if kind == "prefix":
        prefix = pattern[:-1]
        if vendor == "sqlite":
            return Q(Exact(Substr(expr, 1, len(prefix)), prefix))
        return Q(StartsWith(expr, prefix))
    return Q(Regex(expr, glob_regex(pattern)))


def _label_q(label: LabelCondition, vendor: str, prefix: str, labels_field: str = "labels") -> Q:
    if label.key == RESOURCE_ROLE and labels_field == "labels":
        # A related resource's role is its row's `role`; the primary row's role is "", and a
        # primary resource that carries a role label has it among its labels.
        role = F(f"{prefix}role")
        in_labels = KeyTextTransform(RESOURCE_ROLE, f"{prefix}labels")
        return (Q(**{f"{prefix}role__gt": ""}) & _value_q(role, label, vendor)) | (
            Q(**{f"{prefix}role": ""}) & _value_q(in_labels, label, vendor)
        )
    if label.key == RESOURCE_ID:
        expr = F(f"{prefix}resource_id")
    else:
        expr = KeyTextTransform(label.key, f"{prefix}{labels_field}")
        # A plain `key=value` on PostgreSQL: jsonb containment (served by the GIN index on
        # resource rows).
        if vendor == "postgresql" and label.patterns == label.positive and len(label.positive) == 1:
            if _kind(label.positive[0]) == "exact":
                return Q(**{f"{prefix}{labels_field}__contains": {label.key: label.positive[0]}})
    return _value_q(expr, label, vendor)


def _value_q(expr, label: LabelCondition, vendor: str) -> Q:
    """The label's value (`expr`, NULL when the label is missing) matches its patterns."""
    q = Q(IsNull(expr, False))
    if label.positive:
        q &= any_q(_pattern_q(expr, p, vendor) for p in label.positive)
    for pattern in label.negative:
        q &= ~_pattern_q(expr, pattern, vendor)
    return q


def _primary_q(condition: ResourceCondition, vendor: str) -> Q:
    """A primary-resource condition on the events table (`resource_id`, `resource` labels)."""
    q = Q()
    if condition.ids or condition.id_prefixes:
        exact = [Q(resource_id__in=condition.ids)] if condition.ids else []
        q &= any_q(exact + [_startswith("resource_id", p, vendor) for p in condition.id_prefixes])
    if condition.roles and "" not in condition.roles:
        return Q(pk__in=[])
    if condition.pairs:
        return Q(pk__in=[])
    for label in condition.labels:
        q &= _label_q(label, vendor, "", labels_field="resource")
    return q


def _row_q(condition: ResourceCondition, vendor: str, prefix: str) -> Q:
    """The condition on one EventResource row (fields reached through `prefix`)."""
    q = Q()
    role = f"{prefix}role"
    if condition.scope == "resource":
        q &= Q(**{role: ""})
    elif condition.scope == "related":
        # A positive lookup: negating a condition across the join would ask "no row of the
        # event has role ''", which is never true.
        q &= Q(**{f"{role}__gt": ""})
    if condition.ids or condition.id_prefixes:
        exact = [Q(**{f"{prefix}resource_id__in": condition.ids})] if condition.ids else []
        q &= any_q(exact + [_startswith(f"{prefix}resource_id", p, vendor) for p in condition.id_prefixes])
    if condition.roles:
        q &= Q(**{f"{role}__in": condition.roles})
    if condition.pairs:
        q &= any_q(Q(**{f"{prefix}resource_id": rid, role: r}) for rid, r in condition.pairs)
    for label in condition.labels:
        q &= _label_q(label, vendor, prefix)
    return q


# -- free text --------------------------------------------------------------------------------

class WordsMatch(Func):
    """`words @@ 'query'::tsquery`: the query is built from words, never parsed by a text-search
    configuration, so it means on PostgreSQL exactly what TextQuery.matches() means in Python."""

    template = "(%(expressions)s::tsquery)"
    arg_joiner = " @@ "
    output_field = BooleanField()


def text_q(query: "TextQuery", field_name: str, vendor: str) -> Q:
    """The text query over a words column."""
    if vendor == "postgresql":
        return Q(WordsMatch(F(field_name), Value(tsquery(query))))
    # Elsewhere the words are stored as " w1 w2 …": a word starts with q where " q" occurs.
    def has(term: Term) -> Q:
        return Q(*(Q(**{f"{field_name}__contains": " " + w}) for w in term))

    q = Q()
    if query.any_of:
        q &= any_q(has(t) for t in query.any_of)
    for term in query.required:
        q &= has(term)
    for term in query.excluded:
        q &= ~has(term)
    return q

def tsquery(query: "TextQuery") -> str:
    def has(term: Term) -> str:
        return "(" + " & ".join(f"'{w}':*" for w in term) + ")"

    parts = []
    if query.any_of:
        parts.append("(" + " | ".join(has(t) for t in query.any_of) + ")")
    parts += [has(t) for t in query.required]
    parts += ["!" + has(t) for t in query.excluded]
    return " & ".join(parts)
