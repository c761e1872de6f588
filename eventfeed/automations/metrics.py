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

from collections import deque
from dataclasses import dataclass, replace
from datetime import timedelta

from eventfeed.events.filters import EventFilter
from eventfeed.events.patterns import _kind
from eventfeed.events.schema import RESOURCE_ID

from .triggers import FLOW_RUN, GENERIC, Firing, MetricTrigger

EVERY = 10.0
TERMINAL = {"Completed", "Failed", "Crashed"}
FAILED = {"Failed", "Crashed"}


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
    exact = tuple(n for n in names if _kind(n) == "exact")
    prefixes = tuple(n[:-1] for n in names if _kind(n) == "prefix")
    kwargs = {"names": exact, "prefixes": prefixes} if names and len(exact) + len(prefixes) == len(names) else {}
    return EventFilter(since=since, until=until, resources=t.resource_filter.resources, **kwargs)


def measure(t: MetricTrigger, now) -> float | None:
    """The metric now, from the stored events of the window. Counts are counted by the
    database; the flow-run metrics read the window's flow-run state events."""
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
    return replace(base, order="ASC", resources=base.resources + _filter(t, None, None).resources)
