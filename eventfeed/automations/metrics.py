"""Metric triggers: Prefect Cloud's `MetricTrigger` (successes, duration, lateness of flow runs)
and Eventfeed's generic ones (the count, or the rate, of any events over a window).

    {"type": "metric", "posture": "Metric", "match": {...}, "match_related": {...},
     "expect": [...],                               # count / rate: the events counted
     "metric": {"name": "successes" | "duration" | "lateness" | "count" | "rate",
                "operator": "<" | "<=" | ">" | ">=", "threshold": number,
                "range": seconds, "firing_for": seconds,
                "of": [...]}}                        # rate: the events it is a share of

A metric is a function of the events that occurred in (now − range, now], derived from their
`occurred` times as Prefect Cloud documents (docs: "Metric triggers"):

- successes: of the flow runs with a Pending event in the range, the share whose latest state
  event in the range is not Failed or Crashed (a run that failed and then succeeded on a retry
  counts as a success); no runs, no value.
- duration: the mean time from a flow run's Running event to its next terminal event
  (Completed, Failed, Crashed), both in the range, in seconds.
- lateness: the mean time from a flow run's Late event to its next Running or Crashed event,
  both in the range, in seconds (only runs marked Late count).
- count: the number of events matching `match`, `match_related` and `expect` (any name when empty).
- rate: that count divided by the number of events matching `match`, `match_related` and
  `metric.of` (any name when empty); no such events, no value.

The trigger is evaluated every EVERY seconds. It fires once the comparison has held continuously
for `firing_for` seconds (0: at the first evaluation that breaches), and resolves once it has not
held for `firing_for` seconds. The value and its window are in the firing's labels. The same
functions compute the value live (over the stored events) and in a replay (over a stream).
"""

from __future__ import annotations

import operator as op
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from eventfeed.events.filters import EventFilter
from eventfeed.events.schema import RESOURCE_ID

from .triggers import EventTrigger, _Reader, _seconds, pattern_matcher, related_json, resource_matcher

EVERY = 10.0
PREFECT = ("successes", "duration", "lateness")
GENERIC = ("count", "rate")
OPERATORS: dict[str, Callable[[float, float], bool]] = {"<": op.lt, "<=": op.le, ">": op.gt, ">=": op.ge}
METRIC_KEYS = {"type", "id", "match", "match_related", "posture", "metric", "expect",
               # The SDK's model_dump() sends an event trigger's fields with their defaults too.
               "after", "for_each", "threshold", "within"}
QUERY_KEYS = {"name", "operator", "threshold", "range", "firing_for", "of"}
FLOW_RUN = "prefect.flow-run."
TERMINAL = {"Completed", "Failed", "Crashed"}
FAILED = {"Failed", "Crashed"}


@dataclass(frozen=True)
class MetricTrigger:
    path: str
    id: str
    match: dict
    match_related: tuple[dict, ...]
    expect: tuple[str, ...]
    name: str
    operator: str
    threshold: float
    range: float
    firing_for: float
    of: tuple[str, ...] = ()
    type: str = "metric"
    posture: str = "Metric"

    @property
    def event_triggers(self) -> list[EventTrigger]:
        return []  # evaluated on the clock, never per event

    @cached_property
    def _resources(self):
        return resource_matcher(self.match, self.match_related)

    @cached_property
    def _expects(self):
        return pattern_matcher(self.expect) if self.expect else (lambda name: True)

    @cached_property
    def _of(self):
        return pattern_matcher(self.of) if self.of else (lambda name: True)

    def covers(self, name: str, resource: dict, related: list) -> bool:
        """Could this event change the metric?"""
        if self.name in PREFECT and not name.startswith(FLOW_RUN):
            return False
        if self.name == "count" and not self._expects(name):
            return False
        if self.name == "rate" and not (self._expects(name) or self._of(name)):
            return False
        return self._resources(resource, related)

    def breaches(self, value: float | None) -> bool:
        return value is not None and OPERATORS[self.operator](value, self.threshold)


# -- parsing ------------------------------------------------------------------------------------

def parse_metric(r: _Reader, data: dict, path: str, trigger_id: str, depth: int) -> tuple[MetricTrigger, dict] | None:
    before = len(r.problems)
    if depth > 0:
        r.fail(path, "a metric trigger cannot be inside a compound or sequence trigger (Eventfeed evaluates metrics on their own)")
        return None
    for key in data:
        if key not in METRIC_KEYS:
            r.fail(f"{path}.{key}", f"is not a field of a metric trigger (expected one of: {', '.join(sorted(METRIC_KEYS))})")
    if data.get("posture", "Metric") != "Metric":
        r.fail(f"{path}.posture", 'must be "Metric" for a metric trigger')
    for key, empty in (("after", []), ("for_each", [])):
        if data.get(key) not in (None, empty):
            r.fail(f"{path}.{key}", "is not used by a metric trigger: leave it empty")
    match, related = r.resource_specs(data, path)
    expect = r.strings(data.get("expect"), f"{path}.expect")
    q = data.get("metric")
    if not isinstance(q, dict):
        r.fail(f"{path}.metric", "is required: {name, operator, threshold, range, firing_for}")
        return None
    for key in q:
        if key not in QUERY_KEYS:
            r.fail(f"{path}.metric.{key}", f"is not a field of a metric query (expected one of: {', '.join(sorted(QUERY_KEYS))})")
    name = q.get("name")
    if name not in PREFECT + GENERIC:
        r.fail(f"{path}.metric.name", f"must be one of {', '.join(PREFECT + GENERIC)}")
    operator = q.get("operator")
    if operator not in OPERATORS:
        r.fail(f"{path}.metric.operator", 'must be "<", "<=", ">" or ">="')
    threshold = q.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        r.fail(f"{path}.metric.threshold", "is required: a number")
    elif name in ("successes", "rate") and not 0 <= threshold <= 1:
        r.fail(f"{path}.metric.threshold", f"{name} is a share of runs or events: a number from 0 to 1 (0.9 is 90 %)")
    window = r.number(q.get("range", 300), f"{path}.metric.range")
    if window is not None and window < 60:
        r.fail(f"{path}.metric.range", "must be at least 60 seconds")
    firing_for = r.number(q.get("firing_for", 300), f"{path}.metric.firing_for")
    of = r.strings(q.get("of"), f"{path}.metric.of")
    if of and name != "rate":
        r.fail(f"{path}.metric.of", "is only used by the rate metric")
    if expect and name in PREFECT:
        r.fail(f"{path}.expect", f"is not used by the {name} metric (it reads flow-run state events)")
    if len(r.problems) > before:
        return None
    query = {"name": name, "operator": operator, "threshold": threshold, "range": window, "firing_for": firing_for}
    if of:
        query["of"] = of
    out = {"type": "metric", "id": trigger_id, "match": match,
           "match_related": related_json(related), "posture": "Metric", "metric": query}
    if expect:
        out["expect"] = expect
    return MetricTrigger(path, trigger_id, match, tuple(related), tuple(expect), name, operator, float(threshold),
                         window, firing_for, tuple(of)), out


def describe_metric(t: MetricTrigger) -> str:
    op_words = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}[t.operator]
    over = f"over the last {_seconds(t.range)}"
    held = f" for {_seconds(t.firing_for)}" if t.firing_for else ""
    if t.name == "successes":
        what = f"the share of flow runs that succeed {over} is {op_words} {t.threshold:.0%}"
    elif t.name == "duration":
        what = f"the mean flow-run duration {over} is {op_words} {_seconds(t.threshold)}"
    elif t.name == "lateness":
        what = f"the mean lateness of late flow runs {over} is {op_words} {_seconds(t.threshold)}"
    elif t.name == "count":
        names = " or ".join(t.expect) if t.expect else "matching"
        what = f"the number of {names} events {over} is {op_words} {t.threshold:g}"
    else:
        names = " or ".join(t.expect) if t.expect else "matching"
        of = " or ".join(t.of) if t.of else "all matching"
        what = f"{names} events are {op_words} {t.threshold:.1%} of {of} events {over}"
    return f"Fires when {what}{held}; resolves when that has stopped{held}."


# -- the value ----------------------------------------------------------------------------------

def value_of(t: MetricTrigger, events: list[tuple[float, str, str]]) -> float | None:
    """The metric over (occurred, name, resource id) of the covered events in the window,
    oldest first."""
    if t.name == "count":
        return float(len(events))
    if t.name == "rate":
        total = sum(1 for _, name, _ in events if t._of(name))
        part = sum(1 for _, name, _ in events if t._expects(name))
        return part / total if total else None
    by_run: dict[str, list[tuple[float, str]]] = {}
    for at, name, rid in events:
        if name.startswith(FLOW_RUN):
            by_run.setdefault(rid, []).append((at, name[len(FLOW_RUN):]))
    if t.name == "successes":
        runs = [states for states in by_run.values() if any(s == "Pending" for _, s in states)]
        if not runs:
            return None
        succeeded = 0
        for states in runs:
            last = [s for _, s in states if s not in ("heartbeat",)][-1]
            succeeded += last not in FAILED
        return succeeded / len(runs)
    starts, ends = ({"Running"}, TERMINAL) if t.name == "duration" else ({"Late"}, {"Running", "Crashed"})
    spans = []
    for states in by_run.values():
        began = None
        for at, s in states:
            if s in starts and began is None:
                began = at
            elif s in ends and began is not None:
                spans.append(at - began)
                began = None
    return sum(spans) / len(spans) if spans else None


# -- the breach state machine (the same live and in a replay) -------------------------------------

@dataclass
class MetricFiring:
    kind: str
    at: float
    labels: dict


def step(t: MetricTrigger, state: dict, now: float, value: float | None) -> list[MetricFiring]:
    m = state.setdefault("m", {"since": None, "ok_since": None, "firing": False})
    m.update(value=value, at=now, next=now + EVERY)
    labels = {"metric": t.name, "value": "none" if value is None else f"{value:g}", "range": f"{t.range:g}"}
    if t.breaches(value):
        m["ok_since"] = None
        m["since"] = m["since"] if m["since"] is not None else now
        if not m["firing"] and now - m["since"] >= t.firing_for:
            m["firing"] = True
            return [MetricFiring("triggered", now, labels)]
    else:
        m["since"] = None
        m["ok_since"] = m["ok_since"] if m["ok_since"] is not None else now
        if m["firing"] and now - m["ok_since"] >= t.firing_for:
            m["firing"] = False
            return [MetricFiring("resolved", now, labels)]
    return []


def next_due(state: dict) -> float:
    m = state.get("m")
    return m["next"] if m else float("-inf")


def state_view(t: MetricTrigger, state: dict) -> dict:
    m = state.get("m") or {}
    return {"metric": t.name, "value": m.get("value"), "operator": t.operator, "threshold": t.threshold,
            "range": t.range, "firing_for": t.firing_for, "breaching_since": m.get("since"), "firing": m.get("firing", False),
            "evaluated_at": m.get("at"), "next_at": m.get("next")}


# -- live: the value over the stored events ------------------------------------------------------

def _filter(t: MetricTrigger, since, until, names: tuple[str, ...] = ()) -> EventFilter:
    from .triggers import _labels
    from eventfeed.events.filters import ResourceCondition
    from eventfeed.events.patterns import _kind

    conditions = []
    if t.match:
        conditions.append(ResourceCondition("resource", labels=_labels(t.match)))
    for spec in t.match_related:
        conditions.append(ResourceCondition("related", labels=_labels(spec)))
    exact = tuple(n for n in names if _kind(n) == "exact")
    prefixes = tuple(n[:-1] for n in names if _kind(n) == "prefix")
    kwargs = {"names": exact, "prefixes": prefixes} if names and len(exact) + len(prefixes) == len(names) else {}
    return EventFilter(since=since, until=until, resources=tuple(conditions), **kwargs)


def measure(t: MetricTrigger, now) -> float | None:
    """The metric now, from the stored events of the window. Counts are counted by the
    database; the flow-run metrics read the window's flow-run state events."""
    from datetime import timedelta

    since, until = now - timedelta(seconds=t.range), now
    if t.name in GENERIC:
        rows = _filter(t, since, until, t.expect + t.of if t.name == "rate" else t.expect).queryset()
        rows = rows.values_list("id", "occurred", "event", "resource_id", "resource", "related")
    else:
        rows = _filter(t, since, until, (FLOW_RUN + "*",)).queryset().values_list(
            "id", "occurred", "event", "resource_id", "resource", "related")
    seen, events = set(), []
    for event_id, occurred, name, rid, resource, related in rows.order_by():
        # The window is open at its start, like the replay's; the filter's since is inclusive.
        if event_id in seen or occurred <= since or not t.covers(name, resource, related or []):
            continue
        seen.add(event_id)
        events.append((occurred.timestamp(), name, rid))
    events.sort()
    return value_of(t, events)


def tick(t: MetricTrigger, state: dict, now) -> list:
    """The live ticker's evaluation: measure, step, and the firings in the core's shape."""
    from .core import Firing

    return [Firing(f.kind, f.at, None, f.labels) for f in step(t, state, now.timestamp(), measure(t, now))]


# -- a replay: the value over a stream ---------------------------------------------------------

def replay_stream(t: MetricTrigger, events, start: float, end: float) -> list[MetricFiring]:
    """Evaluate every EVERY seconds from start to end over a stream of Matchable events (oldest
    first), exactly as the live ticker would over the stored ones."""
    window: deque = deque()
    state: dict = {}
    firings: list[MetricFiring] = []
    now = start
    stream = iter(events)
    pending = next(stream, None)
    while now <= end:
        while pending is not None and pending.occurred.timestamp() <= now:
            if t.covers(pending.event, pending.resource, pending.related):
                window.append((pending.occurred.timestamp(), pending.event, pending.resource.get(RESOURCE_ID)))
            pending = next(stream, None)
        while window and window[0][0] <= now - t.range:
            window.popleft()
        firings += step(t, state, now, value_of(t, list(window)))
        now += EVERY
    return firings


def metric_filter(t: MetricTrigger, base: EventFilter) -> EventFilter:
    """The replay's database pre-selection: the user's filter and the trigger's resources."""
    from dataclasses import replace

    return replace(base, order="ASC", resources=base.resources + _filter(t, None, None).resources)
