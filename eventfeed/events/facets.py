"""Facets beside the feed: what the events of the current filter and range are made of (event
name prefixes, states, resource kinds, deployments, tags, each related role's top resources),
with counts, and each value as a query-string term to include or exclude.

Counts are exact when they can be had cheaply: event names from EventCount when the filter is
time and names only, everything when the filter matches few events (at most EXACT_CAP, all read).
Otherwise they are estimated from a bounded sample of the range (queries.FilterSample) and say so.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from . import jsoncodec
from .filter_parsers import ROLE_PREFIX
from .filters import EventFilter
from .queries import EXACT_CAP, HISTOGRAM_MAX_BARS, FilterSample, histogram_bucket_seconds, name_counts
from .schema import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE

STATE_LABEL = "prefect.state-name"
# Events read for an estimate, spread over the histogram's buckets.
FACET_SAMPLE = 1_000
TOP = 8
TOP_PER_ROLE = 5
# Roles with a facet of their own, in this order; every other role follows, busiest first.
OWN_ROLES = ("deployment", "tag")
TITLES = {"event": "Event", "state": "State", "kind": "Resource kind", "deployment": "Deployment", "tag": "Tag"}
# A value the query string can carry as an exact term: no glob, label or negation characters.
PLAIN = re.compile(r"^[^=*?!\s][^=*?\s]*$")


@dataclass
class FacetValue:
    label: str
    value: str  # what the label stands for, in full (a prefix, an id, a state)
    count: int
    param: str  # the query-string parameter its terms go in
    include: str  # the term that keeps only these events
    exclude: str  # the term that leaves them out
    # Event names are ORed: "only these" replaces the positive name terms instead of adding one.
    only: bool = False


@dataclass
class Facet:
    key: str
    title: str
    estimated: bool
    values: list[FacetValue] = field(default_factory=list)
    # Values left out of `values` (past the top few).
    more: int = 0


@dataclass
class Facets:
    facets: list[Facet]
    total: int
    estimated: bool
    # Events read to estimate (0 when every count is exact).
    read: int = 0


# The sampled row: (bucket index, event name, primary resource id, its state, related as JSON text).
ROW_FIELDS = ("event", "resource_id", KeyTextTransform(STATE_LABEL, "resource"), Cast("related", TextField()))


def facets(f: EventFilter) -> Facets:
    """The facets of the events matching `f` (whose time range is bounded)."""
    names: Counter | None = None
    total = None
    if f.names_only:
        names = Counter(dict(name_counts(f)))
        total = sum(names.values())
    rows = None
    if total is not None and total <= EXACT_CAP:
        rows = [(0, *values) for values in f.count_queryset().values_list(*ROW_FIELDS)]
    elif total is None and (found := f.few_matches(EXACT_CAP, ROW_FIELDS)) is not None:
        rows = [(0, *values) for values in found]
    if rows is not None:
        tally = _tally(rows, lambda index: 1.0)
        return _facets(f, tally, names, total if total is not None else len(rows), sampled=False, read=0)
    buckets = math.ceil((f.until - f.since).total_seconds() / histogram_bucket_seconds(f.since, f.until))
    per_bucket = max(3, FACET_SAMPLE // max(1, min(buckets, HISTOGRAM_MAX_BARS + 1)))
    sample = FilterSample.draw(f, per_bucket, ROW_FIELDS)
    tally = _tally(sample.rows, sample.weight)
    if total is None:
        total = sum(b.count for b in sample.estimated_buckets())
    return _facets(f, tally, names, total, sampled=not sample.exact, read=sum(sample.seen.values()), exact_total=f.names_only)


@dataclass
class Tally:
    names: Counter = field(default_factory=Counter)
    states: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    related: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    labels: dict[tuple[str, str], str] = field(default_factory=dict)


def _tally(rows: list[tuple], weight: Callable[[int], float]) -> Tally:
    """Weighted counts of each facet value over the rows; a resource counts once per event."""
    t = Tally()
    for index, name, resource_id, state, related in rows:
        w = weight(index)
        t.names[name] += w
        if state:
            t.states[state] += w
        t.kinds[kind_of(resource_id)] += w
        counted = set()
        for resource in jsoncodec.loads(related) if related else ():
            rid, role = resource.get(RESOURCE_ID), resource.get(RESOURCE_ROLE)
            if not rid or not role or (role, rid) in counted:
                continue
            counted.add((role, rid))
            t.related[role][rid] += w
            if resource.get(RESOURCE_NAME):
                t.labels[(role, rid)] = resource[RESOURCE_NAME]
    return t


def kind_of(resource_id: str) -> str:
    """A resource's kind: its id up to the last dot (prefect.flow-run.abc → prefect.flow-run.),
    or the whole id when it has none."""
    head, dot, _ = resource_id.rpartition(".")
    return head + dot if head else resource_id


namespace_of = kind_of


def _facets(f: EventFilter, t: Tally, names: Counter | None, total: int, *, sampled: bool, read: int,
            exact_total: bool = False) -> Facets:
    out = []
    by_prefix: Counter = Counter()
    for name, n in (names if names is not None else t.names).items():
        by_prefix[namespace_of(name)] += n
    # "Only these" replaces the filter's names, so it may only offer what lies inside them: with
    # `a.b.*` in force, `a.*` would widen the feed past what its count says.
    inside = Counter({p: n for p, n in _nested(by_prefix).items() if not (f.names or f.prefixes)
                      or p in f.names or any(p.startswith(q) for q in f.prefixes)})
    event = _facet("event", TITLES["event"], sampled and names is None, inside, "event", _prefix_terms)
    for value in event.values:
        value.only = True
    out.append(event)
    out.append(_facet("state", TITLES["state"], sampled, t.states, "resource",
                      lambda v: (f"{STATE_LABEL}={v}", f"!{STATE_LABEL}={v}") if PLAIN.match(v) else None))
    out.append(_facet("kind", TITLES["kind"], sampled, _nested(t.kinds), "resource", _prefix_terms))
    roles = [r for r in OWN_ROLES if t.related.get(r)]
    roles += sorted((r for r in t.related if r not in OWN_ROLES), key=lambda r: -sum(t.related[r].values()))
    for role in roles:
        if not ROLE_PREFIX.match(f"{role}:"):
            continue  # the query string cannot name this role
        facet = _facet(
            role, TITLES.get(role, f"Related {role.replace('-', ' ')}"), sampled, t.related[role], "related",
            lambda v, role=role: (f"{role}:{v}", f"!{role}:{v}") if PLAIN.match(v) else None,
            top=TOP if role in OWN_ROLES else TOP_PER_ROLE,
            label=lambda v, role=role: t.labels.get((role, v)) or (v.removeprefix("prefect.tag.") if role == "tag" else v),
        )
        out.append(facet)
    estimated = sampled and not exact_total
    return Facets([f for f in out if f.values], round(total), estimated, read if sampled else 0)


def _nested(counts: Counter) -> Counter:
    """Counts by prefix as `prefix.*` selects: a.b.c's events count under a.b. and, if a. is a
    value too, under a. (which also has a.x's)."""
    return Counter({p: sum(n for v, n in counts.items() if v.startswith(p)) if p.endswith(".") else counts[p] for p in counts})


def _prefix_terms(value: str) -> tuple[str, str] | None:
    """`prefix.*` / `!prefix.*` for a prefix ending in a dot; a value without dots is exact."""
    if not PLAIN.match(value):
        return None
    term = f"{value}*" if value.endswith(".") else value
    return term, f"!{term}"


def _facet(key, title, estimated, counts: Counter, param, terms, *, top: int = TOP, label=None) -> Facet:
    facet = Facet(key, title, estimated)
    ranked = sorted(((v, n) for v, n in counts.items() if round(n) > 0), key=lambda item: (-item[1], item[0]))
    for value, n in ranked[:top]:
        pair = terms(value)
        if pair is None:
            continue
        shown = label(value) if label else pair[0].removeprefix(f"{STATE_LABEL}=")
        facet.values.append(FacetValue(shown, value, round(n), param, *pair))
    facet.more = max(0, len(ranked) - top)
    return facet
