"""The one event filter: the feed's query string, the API's EventFilter JSON, the live push and
trigger matching all build an `EventFilter`, which answers through two back ends that must agree:

- `queryset()` / `page()`: the database (filter_sql.py, mixed in as FilterSQL);
- `matches(event)`: in Python, for events that are not (or not yet) read back from the database.

This module is the filter's data and its Python matcher; filter_parsers.py builds it from
Prefect's JSON and from the feed's query terms, filtersets.py from the query string.

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
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Callable

from .filter_sql import FilterSQL
from .patterns import _kind, any_of, matcher
from .problems import parse_time
from .schema import RESOURCE_ID, RESOURCE_ROLE, query_words, search_words

MAX_TEXT_QUERY = 200


class FilterError(ValueError):
    """Bad filter input: a list of (path, rule) the caller turns into a 4xx or form errors."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {rule}" for path, rule in problems))

    def as_list(self) -> list[dict[str, str]]:
        return [{"path": path, "rule": rule} for path, rule in self.problems]


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

    @cached_property
    def matches_value(self) -> Callable[[str | None], bool]:
        """A missing label never matches. Compiled once per condition: the live push and the
        automation evaluator ask it for every event."""
        if self.positive and not self.negative and all(_kind(p) == "exact" for p in self.positive):
            # The common case (an id, a role, a state type): a set lookup, and None is never in it.
            return frozenset(self.positive).__contains__
        positive = matcher(self.positive) if self.positive else None
        negative = matcher(self.negative) if self.negative else None

        def matches(value: str | None) -> bool:
            if value is None:
                return False
            if positive is not None and not positive(value):
                return False
            return negative is None or not negative(value)

        return matches


@dataclass(frozen=True)
class ResourceCondition:
    """Some resource of the event, in `scope`, satisfies every part given here."""

    scope: str  # "resource" (primary), "related", or "any"
    ids: tuple[str, ...] = ()
    id_prefixes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()  # Prefect's resources_in_roles: (id, role) ORed
    labels: tuple[LabelCondition, ...] = ()
    # An exclusion: no resource of the event in `scope` satisfies the parts (the query string's
    # leading `!`, what a facet's "exclude" adds). Prefect's JSON has no such condition.
    negate: bool = False

    @cached_property
    def matches_resource(self) -> Callable[[dict, str], bool]:
        """One resource as on the wire (all its labels, its id among them) in the role it has in
        the event: "" for the primary resource. Compiled once per condition."""
        scope = self.scope
        id_ok = any_of(self.ids, self.id_prefixes) if self.ids or self.id_prefixes else None
        roles = frozenset(self.roles) if self.roles else None
        pairs = frozenset(self.pairs) if self.pairs else None
        labels = tuple((label.key, label.matches_value) for label in self.labels)

        def matches(resource: dict, role: str) -> bool:
            if (scope == "resource" and role) or (scope == "related" and not role):
                return False
            if id_ok is not None and not id_ok(resource[RESOURCE_ID]):
                return False
            if roles is not None and role not in roles:
                return False
            if pairs is not None and (resource[RESOURCE_ID], role) not in pairs:
                return False
            for key, ok in labels:
                if not ok(resource.get(key)):
                    return False
            return True

        return matches

    @property
    def is_empty(self) -> bool:
        return not (self.ids or self.id_prefixes or self.roles or self.pairs or self.labels)


@dataclass(frozen=True)
class EventFilter(FilterSQL):
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

    def matches(self, event: "Matchable") -> bool:
        if self.since is not None and event.occurred < self.since:
            return False
        if self.until is not None and event.occurred > self.until:
            return False
        if self.ids and event.id not in self.ids:
            return False
        if not self.matches_name(event.event):
            return False
        if self.resources and not self.matches_resources(event.resource, event.related):
            return False
        if self.text and not self.text_query.matches(event.words):
            return False
        return True

    @cached_property
    def matches_name(self) -> Callable[[str], bool]:
        """`names`/`prefixes` (ORed), then the exclusions."""
        wanted = any_of(self.names, self.prefixes) if self.names or self.prefixes else None
        unwanted = any_of(self.exclude_names, self.exclude_prefixes) if self.exclude_names or self.exclude_prefixes else None

        def matches(name: str) -> bool:
            return (wanted is None or wanted(name)) and (unwanted is None or not unwanted(name))

        return matches

    @cached_property
    def matches_resources(self) -> Callable[[dict, list], bool]:
        """The resource conditions on a wire event's resource and related list, before anything
        is parsed: each condition holds for the primary resource or for some related one. A
        related resource repeated with the same id and role counts with its first labels only,
        as ingest stores it once (models.resource_rows)."""
        checks = tuple((c.scope != "related", c.scope != "resource", c.matches_resource, c.negate) for c in self.resources)

        def first_of_its_kind(related: list, i: int) -> bool:
            key = (related[i][RESOURCE_ID], related[i][RESOURCE_ROLE])
            return all((r[RESOURCE_ID], r[RESOURCE_ROLE]) != key for r in related[:i])

        def matches(resource: dict, related: list) -> bool:
            for primary, in_related, check, negate in checks:
                found = (primary and check(resource, "")) or (in_related and any(
                    check(r, r[RESOURCE_ROLE]) and first_of_its_kind(related, i) for i, r in enumerate(related)))
                if found == negate:
                    return False
            return True

        return matches

    @cached_property
    def text_query(self) -> "TextQuery":
        return TextQuery.parse(self.text)


# -- free text --------------------------------------------------------------------------------

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
    def words(self) -> list[str]:
        return sorted(search_words(self.event, self.resource, self.related, self.payload))
