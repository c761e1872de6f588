"""The one event filter: the feed's query string, the API's EventFilter JSON, the live push and
trigger matching all build an `EventFilter`, which answers through two back ends that must agree:

- `queryset()` / `page()`: the database;
- `matches(event)`: in Python, for events that are not (or not yet) read back from the database.

`tests/test_filters_property.py` generates events and filters and checks the two agree.

Differences from Prefect's EventFilter, on purpose (see README):
- event `name` and `prefix` are ORed (Prefect ANDs them, so mixing two families shows nothing);
- in a label's list of values, the positive patterns are ORed and the `!` patterns all apply
  (Prefect ORs everything, so `["!a", "!b"]` matches everything);
- a missing `occurred.until` means "no upper bound", not "now at parse time", so a live
  subscription without `until` receives live events.
"""

from __future__ import annotations

import re
import uuid
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Iterable

from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, Value, Window
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import RowNumber, Substr
from django.db.models.lookups import Exact, IsNull, Regex, StartsWith

from .models import Event, EventResource, resource_rows
from .problems import NUL_RULE, Problems, parse_time
from .schema import RESOURCE_ID, RESOURCE_ROLE, query_words, search_words

MAX_TEXT_QUERY = 200


class FilterError(ValueError):
    """Bad filter input: a list of (path, rule) the caller turns into a 4xx or form errors."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {rule}" for path, rule in problems))

    def as_list(self) -> list[dict[str, str]]:
        return [{"path": path, "rule": rule} for path, rule in self.problems]


# -- glob patterns ----------------------------------------------------------------------------

def _kind(pattern: str) -> str:
    """exact, prefix (a single trailing `*`) or glob (`*`/`?` anywhere)."""
    star, qmark = pattern.find("*"), pattern.find("?")
    if star == -1 and qmark == -1:
        return "exact"
    if qmark == -1 and star == len(pattern) - 1:
        return "prefix"
    return "glob"


def glob_regex(pattern: str) -> str:
    """A regex that Python's re and PostgreSQL's ARE read the same way: `*` any run, `?` one
    character, everything else literal, anchored at both ends, `.` matching newlines too."""
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch.isalnum() or ch == "_":
            out.append(ch)
        else:
            out.append("\\" + ch if ch.isascii() else ch)
    return "(?s)\\A" + "".join(out) + "\\Z"


def glob_match(pattern: str, value: str) -> bool:
    kind = _kind(pattern)
    if kind == "exact":
        return value == pattern
    if kind == "prefix":
        return value.startswith(pattern[:-1])
    return re.search(glob_regex(pattern), value) is not None


# -- the filter -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelCondition:
    """`key` must be present and its value match: any of the positive patterns (if there are
    any) and none of the `!` ones."""

    key: str
    patterns: tuple[str, ...]

    @cached_property
    def positive(self) -> tuple[str, ...]:
        return tuple(p for p in self.patterns if not p.startswith("!"))

    @cached_property
    def negative(self) -> tuple[str, ...]:
        return tuple(p[1:] for p in self.patterns if p.startswith("!"))

    def matches_value(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.positive and not any(glob_match(p, value) for p in self.positive):
            return False
        return not any(glob_match(p, value) for p in self.negative)


@dataclass(frozen=True)
class ResourceCondition:
    """Some resource of the event, in `scope`, satisfies every part given here."""

    scope: str  # "resource" (primary), "related", or "any"
    ids: tuple[str, ...] = ()
    id_prefixes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()  # Prefect's resources_in_roles: (id, role) ORed
    labels: tuple[LabelCondition, ...] = ()

    def matches_row(self, rid: str, role: str, labels: dict[str, str]) -> bool:
        if self.scope == "resource" and role:
            return False
        if self.scope == "related" and not role:
            return False
        if (self.ids or self.id_prefixes) and not (
            rid in self.ids or any(rid.startswith(p) for p in self.id_prefixes)
        ):
            return False
        if self.roles and role not in self.roles:
            return False
        if self.pairs and (rid, role) not in self.pairs:
            return False
        for label in self.labels:
            if label.key == RESOURCE_ID:
                value = rid
            elif label.key == RESOURCE_ROLE and role:
                value = role
            else:
                value = labels.get(label.key)
            if not label.matches_value(value):
                return False
        return True

    @property
    def is_empty(self) -> bool:
        return not (self.ids or self.id_prefixes or self.roles or self.pairs or self.labels)


@dataclass(frozen=True)
class EventFilter:
    since: datetime | None = None
    until: datetime | None = None
    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    resources: tuple[ResourceCondition, ...] = ()
    ids: tuple[uuid.UUID, ...] = ()
    text: str = ""
    distinct: bool = False
    order: str = "DESC"

    # -- in Python ----------------------------------------------------------------------------

    def matches(self, event: "Matchable") -> bool:
        if self.since is not None and event.occurred < self.since:
            return False
        if self.until is not None and event.occurred > self.until:
            return False
        if self.ids and event.id not in self.ids:
            return False
        name = event.event
        if (self.names or self.prefixes) and not (
            name in self.names or any(name.startswith(p) for p in self.prefixes)
        ):
            return False
        if name in self.exclude_names or any(name.startswith(p) for p in self.exclude_prefixes):
            return False
        rows = event.rows
        for condition in self.resources:
            if not any(condition.matches_row(*row) for row in rows):
                return False
        if self.text and not self.text_query.matches(event.words):
            return False
        return True

    @cached_property
    def text_query(self) -> "TextQuery":
        return TextQuery.parse(self.text)

    # -- in the database ----------------------------------------------------------------------

    def _driver(self, vendor: str) -> ResourceCondition | None:
        """A related/any condition with exact ids, which can drive the query from the resources
        index (newest events of those resources, in order). Prefixes cannot: their range spans
        many resources and would need a sort of every match. SQLite plans the EXISTS form well
        enough at laptop scale."""
        if vendor != "postgresql" or self.distinct:
            return None
        for condition in self.resources:
            if condition.scope != "resource" and condition.ids:
                return condition
        return None

    def queryset(self, *, after: tuple[datetime, uuid.UUID] | None = None):
        """Events matching the filter, in filter order, with the keyset cursor applied.

        With an exact or prefix resource condition, the query joins the resources table and
        orders by its copy of `occurred`, so the newest events of a resource are an index range
        scan. Such a join can repeat an event (an id prefix matching two of its tags): `page()`
        removes the repeats.
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
        if self.ids:
            cond &= Q(id__in=self.ids)
        # Exclusions stay on the events table: negated across the join they would become
        # subqueries.
        cond &= self.names_q(vendor, include=name, exclude="event")
        for condition in self.resources:
            if condition is driver and not condition.labels:
                continue
            if condition.scope == "resource":
                # The primary resource is on the events row itself: no join, and the planner
                # can choose between the newest-first scan and the resource_id index.
                cond &= _primary_q(condition, vendor)
                continue
            cond &= Q(Exists(EventResource.objects.filter(_row_q(condition, vendor, ""), event_id=OuterRef("pk"))))
        if self.text:
            cond &= self.text_query.q("words", vendor)
        if after is not None:
            t, last = after
            if self.order == "ASC":
                cond &= Q(**{f"{occurred}__gte": t}) & (Q(**{f"{occurred}__gt": t}) | Q(**{f"{pk}__gt": last}))
            else:
                cond &= Q(**{f"{occurred}__lte": t}) & (Q(**{f"{occurred}__lt": t}) | Q(**{f"{pk}__lt": last}))
        # `words` is for the index only; read back, it would be split into a list on every row.
        qs = Event.objects.defer("words").filter(cond)
        if self.distinct:
            newest = Window(RowNumber(), partition_by=[F("resource_id")], order_by=[F("occurred").desc(), F("id").desc()])
            qs = qs.annotate(_nth=newest).filter(_nth=1)
        if self.order == "ASC":
            return qs.order_by(occurred, pk)
        return qs.order_by(f"-{occurred}", f"-{pk}")

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


Term = tuple[str, ...]


@dataclass(frozen=True)
class TextQuery:
    """Prefect's text query: plain terms are ORed, `+term` is required, `-term`/`!term` is
    excluded, "quoted phrases" are one term. Case-insensitive.

    A term matches an event when each of its words starts a word of the event (`time` finds
    "timeout"; `flow-run.fail` finds prefect.flow-run.Failed). That is a word index's question,
    which PostgreSQL answers from a GIN index at ingest speed; substrings inside a word
    (`imeout`) are not found.
    """

    any_of: tuple[Term, ...] = ()
    required: tuple[Term, ...] = ()
    excluded: tuple[Term, ...] = ()

    @staticmethod
    def terms(text: str):
        """(sign, term text, its words) for each term of the query."""
        for match in re.finditer(r'([+\-!]?)(?:"([^"]*)"|(\S+))', text):
            sign, phrase, word = match.groups()
            term = phrase if phrase is not None else word
            yield sign, term, tuple(query_words(term))

    @staticmethod
    def problem(text: str) -> str | None:
        """Why the query cannot be searched for, if it cannot."""
        for sign, term, words in TextQuery.terms(text):
            if not words:
                return f"“{sign}{term}” has no letters or digits to search for"
        return None

    @classmethod
    def parse(cls, text: str) -> "TextQuery":
        any_of, required, excluded = [], [], []
        for sign, _, words in cls.terms(text):
            if words:
                {"+": required, "-": excluded, "!": excluded}.get(sign, any_of).append(words)
        return cls(tuple(any_of), tuple(required), tuple(excluded))

    @staticmethod
    def _has(event_words: list[str], term: Term) -> bool:
        # event_words is sorted: the first word not below a query word is the one it would start.
        for q in term:
            i = bisect_left(event_words, q)
            if i == len(event_words) or not event_words[i].startswith(q):
                return False
        return True

    def matches(self, event_words: list[str]) -> bool:
        """Over the event's words, sorted."""
        if self.any_of and not any(self._has(event_words, t) for t in self.any_of):
            return False
        if not all(self._has(event_words, t) for t in self.required):
            return False
        return not any(self._has(event_words, t) for t in self.excluded)

    def q(self, field_name: str, vendor: str) -> Q:
        if vendor == "postgresql":
            return Q(WordsMatch(F(field_name), Value(self.tsquery())))
        # Elsewhere the words are stored as " w1 w2 …": a word starts with q where " q" occurs.
        def has(term: Term) -> Q:
            return Q(*(Q(**{f"{field_name}__contains": " " + w}) for w in term))

        q = Q()
        if self.any_of:
            q &= any_q(has(t) for t in self.any_of)
        for term in self.required:
            q &= has(term)
        for term in self.excluded:
            q &= ~has(term)
        return q

    def tsquery(self) -> str:
        def has(term: Term) -> str:
            return "(" + " & ".join(f"'{w}':*" for w in term) + ")"

        parts = []
        if self.any_of:
            parts.append("(" + " | ".join(has(t) for t in self.any_of) + ")")
        parts += [has(t) for t in self.required]
        parts += ["!" + has(t) for t in self.excluded]
        return " & ".join(parts)


# -- events as matches() sees them ------------------------------------------------------------

class Matchable:
    """An event from the wire (a Prefect-shaped dict) or a CleanEvent, as the matcher reads it.
    Parsing happens once per event, however many filters look at it."""

    __slots__ = ("id", "occurred", "event", "resource", "related", "payload", "__dict__")

    def __init__(self, *, id, occurred, event, resource, related, payload):
        self.id = id
        self.occurred = occurred
        self.event = event
        self.resource = resource
        self.related = related
        self.payload = payload

    @classmethod
    def from_wire(cls, data: dict) -> "Matchable":
        return cls(
            id=uuid.UUID(data["id"]),
            occurred=parse_time(data["occurred"]),
            event=data["event"],
            resource=data["resource"],
            related=data.get("related") or [],
            payload=data.get("payload") or {},
        )

    @cached_property
    def rows(self) -> list[tuple[str, str, dict]]:
        return list(resource_rows(self.resource, self.related))

    @cached_property
    def words(self) -> list[str]:
        return sorted(search_words(self.event, self.resource, self.related, self.payload))


# -- building a filter from Prefect's EventFilter JSON ----------------------------------------

class JsonReader(Problems):
    """Reads JSON input, collecting everything wrong instead of stopping at the first: the API
    filters (events, automations) answer every problem at once."""

    def obj(self, value: Any, path: str, allowed: set[str]) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        for key in value:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"is not a known field (expected one of: {', '.join(sorted(allowed))})")
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(path, "must be a list of strings")
            return ()
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.fail(f"{path}[{i}]", "must be a string")
            elif "\x00" in item:
                self.fail(f"{path}[{i}]", NUL_RULE)
            else:
                out.append(item)
        return tuple(out)

    def labels(self, value: Any, path: str) -> tuple[LabelCondition, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.fail(path, "must be an object of label: value or label: [values]")
            return ()
        out = []
        for key, patterns in value.items():
            values = self.strings(patterns, f"{path}[{key!r}]")
            if not values:
                self.fail(f'{path}["{key}"]', "needs at least one value")
                continue
            out.append(LabelCondition(key, values))
        return tuple(out)

    def conditions(self, value: Any, path: str, scope: str, allowed: set[str]) -> list[ResourceCondition]:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        out = []
        for i, item in enumerate(items):
            p = f"{path}[{i}]" if isinstance(value, list) else path
            data = self.obj(item, p, allowed)
            pairs = []
            for j, pair in enumerate(data.get("resources_in_roles") or []):
                if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                    self.fail(f"{p}.resources_in_roles[{j}]", "must be a [resource id, role] pair")
                else:
                    pairs.append(tuple(pair))
            condition = ResourceCondition(
                scope=scope,
                ids=self.strings(data.get("id"), f"{p}.id"),
                id_prefixes=self.strings(data.get("id_prefix"), f"{p}.id_prefix"),
                roles=self.strings(data.get("role"), f"{p}.role"),
                pairs=tuple(pairs),
                labels=self.labels(data.get("labels"), f"{p}.labels"),
            )
            if not condition.is_empty:
                out.append(condition)
        return out


FILTER_KEYS = {"occurred", "event", "resource", "related", "any_resource", "id", "text", "order"}


def from_json(data: Any, path: str = "filter") -> EventFilter:
    """Prefect's EventFilter JSON (unknown keys refused, like Prefect's extra="forbid")."""
    r = JsonReader()
    data = r.obj(data, path, FILTER_KEYS)
    occurred = r.obj(data.get("occurred"), f"{path}.occurred", {"since", "until"})
    event = r.obj(data.get("event"), f"{path}.event", {"prefix", "exclude_prefix", "name", "exclude_name"})
    resource = r.obj(data.get("resource"), f"{path}.resource", {"id", "id_prefix", "labels", "distinct"})
    conditions = r.conditions(
        {k: v for k, v in resource.items() if k != "distinct"} or None, f"{path}.resource", "resource", {"id", "id_prefix", "labels"}
    )
    conditions += r.conditions(data.get("related"), f"{path}.related", "related", {"id", "role", "resources_in_roles", "labels"})
    conditions += r.conditions(data.get("any_resource"), f"{path}.any_resource", "any", {"id", "id_prefix", "labels"})
    distinct = resource.get("distinct", False)
    if not isinstance(distinct, bool):
        r.fail(f"{path}.resource.distinct", "must be true or false")
    ids = []
    id_filter = r.obj(data.get("id"), f"{path}.id", {"id"})
    for i, raw in enumerate(r.strings(id_filter.get("id"), f"{path}.id.id")):
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            r.fail(f"{path}.id.id[{i}]", "must be a UUID")
    text = r.obj(data.get("text"), f"{path}.text", {"query"})
    query = text.get("query") or ""
    if not isinstance(query, str) or "\x00" in query:
        r.fail(f"{path}.text.query", "must be a string without NUL characters")
        query = ""
    elif len(query) > MAX_TEXT_QUERY:
        r.fail(f"{path}.text.query", f"is {len(query)} characters; the limit is {MAX_TEXT_QUERY}")
    elif problem := TextQuery.problem(query):
        r.fail(f"{path}.text.query", problem)
    order = data.get("order") or "DESC"
    if order not in ("ASC", "DESC"):
        r.fail(f"{path}.order", 'must be "ASC" or "DESC"')
    since = r.time(occurred.get("since"), f"{path}.occurred.since", optional=True)
    until = r.time(occurred.get("until"), f"{path}.occurred.until", optional=True)
    if since and until and since > until:
        r.fail(f"{path}.occurred", "since must not be after until")
    names = {key: r.strings(event.get(key), f"{path}.event.{key}") for key in ("name", "prefix", "exclude_name", "exclude_prefix")}
    if r.problems:
        raise FilterError(r.problems)
    return EventFilter(
        since=since,
        until=until,
        names=names["name"],
        prefixes=names["prefix"],
        exclude_names=names["exclude_name"],
        exclude_prefixes=names["exclude_prefix"],
        resources=tuple(conditions),
        ids=tuple(ids),
        text=query.strip(),
        distinct=bool(distinct),
        order=order,
    )


# -- building a filter from the feed's query string -------------------------------------------

RANGES = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
ROLE_PREFIX = re.compile(r"^([A-Za-z0-9_-]+):(?!//)")


def parse_event_terms(terms: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`name`, `prefix.*`, `!name`, `!prefix.*` → the four event-name lists."""
    out = {"names": [], "prefixes": [], "exclude_names": [], "exclude_prefixes": []}
    for term in terms:
        term = term.strip()
        if not term:
            continue
        negate = term.startswith("!")
        term = term[1:] if negate else term
        if term.endswith("*"):
            out["exclude_prefixes" if negate else "prefixes"].append(term[:-1])
        else:
            out["exclude_names" if negate else "names"].append(term)
    return {k: tuple(v) for k, v in out.items()}


def parse_resource_term(term: str, scope: str) -> ResourceCondition:
    """One resource condition of the query string.

    `prefect.flow-run.abc` exact id; `prefect.flow-run.*` id prefix; `key=value` a label
    (value may use `*`, `?` and a leading `!`); on `related`, a leading `role:` restricts the
    role (`flow:prefect.flow.1`, `tag:*`, `work-pool:prefect.work-pool.type=kubernetes`).
    """
    term = term.strip()
    roles: tuple[str, ...] = ()
    if scope == "related":
        m = ROLE_PREFIX.match(term)
        if m and "=" not in term[: m.end()]:
            roles, term = (m.group(1),), term[m.end():]
    if term in ("", "*"):
        return ResourceCondition(scope=scope, roles=roles)
    if "=" in term:
        key, _, value = term.partition("=")
        return ResourceCondition(scope=scope, roles=roles, labels=(LabelCondition(key.strip(), (value.strip(),)),))
    kind = _kind(term)
    if term.startswith("!") or kind == "glob":
        return ResourceCondition(scope=scope, roles=roles, labels=(LabelCondition(RESOURCE_ID, (term,)),))
    if kind == "prefix":
        return ResourceCondition(scope=scope, roles=roles, id_prefixes=(term[:-1],))
    return ResourceCondition(scope=scope, roles=roles, ids=(term,))

