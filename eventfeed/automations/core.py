"""The matching and counting core: a function of (trigger, state, event or clock tick) with no
database, no clock and no I/O. Live evaluation keeps `state` in a database row; the preview and
the tests keep it in memory. Both run exactly this code.

`state` is a JSON-able dict:

    {"b": {bucket id: bucket}, "c": {composite path: {child index: [time, seq, event]}},
     "o": {bucket id: event}, "q": sequence counter}

A bucket is {"s": start, "e": end or None, "n": count, "ts": [times], "ev": last event,
"fired": bool}; times are POSIX seconds of the events' `occurred` (or of the clock tick).

Semantics (README "Automations" says where and why they differ from Prefect's):

- Reactive, `within` > 0: fires when `threshold` matching events have occurred within any
  `within` seconds (a sliding window); the count then starts again from zero. No cooldown.
- Reactive, `within` = 0: no time limit; fires on every `threshold`-th matching event.
- Reactive with `after`: an `after` event opens a window (per for_each key) of `within`
  seconds (unlimited for 0); `threshold` expected events in it fire once and close it.
- Proactive with `after`: an `after` event opens a window; if fewer than `threshold` expected
  events arrive before it closes, it fires at the close. A later expected event for the same
  key resolves it.
- Proactive without `after`: back-to-back windows of `within` seconds (per key, from the key's
  first event; without for_each, from the first clock tick); a window with fewer than
  `threshold` events fires, once per silence, and the next window that reaches `threshold`
  resolves it.
- Compound: fires when `require` distinct children have fired within `within` (any time for
  null/0); sequence: when every child's latest firing is in the declared order within `within`.
"""

from __future__ import annotations

import bisect
import heapq
import json
from functools import lru_cache

from eventfeed.events.filters import Matchable
from eventfeed.events.wire import slim

from . import metrics
from .triggers import PROACTIVE, REACTIVE, CompositeTrigger, EventTrigger, Firing, Trigger

# A trigger with for_each can see many keys; expired reactive buckets are pruned once a trigger
# holds more than this many.
PRUNE_AT = 1000


def new_state() -> dict:
    return {"b": {}, "c": {}, "o": {}, "q": 0}


def _bid(t: EventTrigger, key: tuple) -> str:
    return _bid_of(t.path, key)


@lru_cache(maxsize=65536)
def _bid_of(path: str, key: tuple) -> str:
    # Asked for every counted event, live and in a replay, mostly for the same few keys.
    return path + "|" + json.dumps(list(key))


def _labels(t: EventTrigger, bid: str) -> dict:
    key = json.loads(bid.split("|", 1)[1])
    return dict(zip(t.for_each, key))


def _bucket(start: float, end: float | None, count: int, event: dict | None) -> dict:
    return {"s": start, "e": end, "n": count, "ts": [], "ev": event, "fired": False}


# -- events -----------------------------------------------------------------------------------

def on_event(trigger: Trigger, state: dict, event: Matchable) -> list[Firing]:
    """Count one event; return the firings it causes (at the trigger's root)."""
    if isinstance(trigger, CompositeTrigger):
        return _composite(trigger, state, [f for child in trigger.triggers for f in _tag(child, on_event(child, state, event))])
    if not trigger.covers(event):
        return []
    if trigger.posture == REACTIVE:
        return _reactive(trigger, state, event)
    return _proactive_event(trigger, state, event)


def _tag(child: Trigger, firings: list[Firing]) -> list[Firing]:
    for f in firings:
        f.path = child.path
    return firings


def _reactive(t: EventTrigger, state: dict, event: Matchable) -> list[Firing]:
    buckets = state["b"]
    now = event.occurred.timestamp()
    key = t.bucket_key(event)
    bid = _bid(t, key)
    name = event.event
    expected = t.expects(name)
    b = buckets.get(bid)
    if len(buckets) > PRUNE_AT:
        _prune(t, state, now)
    if t.after:
        if b is not None and b["e"] is not None and now >= b["e"]:
            del buckets[bid]  # the window closed without enough events
            b = None
        if b is None and t.starts_after(name):
            end = now + t.within if t.within else None
            # An event that both opens and is expected does not count itself (Prefect).
            b = buckets[bid] = _bucket(now, end, -1 if expected else 0, slim(event))
        if b is None or not expected or now < b["s"]:
            return []
        b["n"] += 1
        if b["n"] >= t.threshold:
            del buckets[bid]
            return [Firing("triggered", now, slim(event), dict(zip(t.for_each, key)))]
        return []
    if not expected:
        return []
    if t.threshold == 1:
        return [Firing("triggered", now, slim(event), dict(zip(t.for_each, key)))]
    if b is None:
        b = buckets[bid] = _bucket(now, None, 0, None)
    if t.within:
        # Kept sorted (an event may arrive late); only the times within `within` of the newest.
        times = b["ts"]
        if not times or now >= times[-1]:
            times.append(now)
        else:
            bisect.insort(times, now)
        cut = bisect.bisect_right(times, times[-1] - t.within)
        if cut:
            del times[:cut]
        b["n"] = len(times)
    else:
        b["n"] += 1
    if b["n"] >= t.threshold:
        del buckets[bid]
        return [Firing("triggered", now, slim(event), dict(zip(t.for_each, key)))]
    return []


def _proactive_event(t: EventTrigger, state: dict, event: Matchable) -> list[Firing]:
    buckets, incidents = state["b"], state["o"]
    now = event.occurred.timestamp()
    key = t.bucket_key(event)
    bid = _bid(t, key)
    name = event.event
    expected = t.expects(name)
    out: list[Firing] = []
    b = buckets.get(bid)
    if b is not None and b["e"] <= now:
        # The event is later than the window's end: close the window(s) first, as a tick would.
        out += _close(t, state, bid, now)
        b = buckets.get(bid)
    if t.after:
        if b is None and t.starts_after(name):
            b = buckets[bid] = _bucket(now, now + t.within, -1 if expected else 0, slim(event))
        if not expected:
            return out
        if bid in incidents:
            del incidents[bid]
            out.append(Firing("resolved", now, slim(event), dict(zip(t.for_each, key))))
        if b is not None and b["s"] <= now < b["e"]:
            b["n"] += 1
            b["ev"] = b["ev"] or slim(event)
            if b["n"] >= t.threshold:
                del buckets[bid]  # satisfied: this window cannot fire
        return out
    if not expected:
        return out
    if b is None:
        b = buckets[bid] = _bucket(now, now + t.within, 0, None)
    if b["s"] <= now < b["e"]:
        b["n"] += 1
        b["ev"] = slim(event)
        if b["fired"] and b["n"] >= t.threshold:
            b["fired"] = False
            out.append(Firing("resolved", now, slim(event), dict(zip(t.for_each, key))))
    return out


# -- the clock --------------------------------------------------------------------------------

def on_tick(trigger: Trigger, state: dict, now: float) -> list[Firing]:
    """Close the proactive windows that ended by `now`; return the firings."""
    if trigger.type == "metric":
        return []  # measured over the store by the engine's tick (metrics.py)
    if isinstance(trigger, CompositeTrigger):
        return _composite(trigger, state, [f for child in trigger.triggers for f in _tag(child, on_tick(child, state, now))])
    if trigger.posture != PROACTIVE:
        _prune(trigger, state, now)
        return []
    buckets = state["b"]
    if not trigger.after and not trigger.for_each:
        bid = _bid(trigger, ())
        if bid not in buckets:
            # Without for_each, windows roll from the moment the trigger starts watching.
            buckets[bid] = _bucket(now, now + trigger.within, 0, None)
    out: list[Firing] = []
    prefix = trigger.path + "|"
    for bid in [b for b in buckets if b.startswith(prefix)]:
        if buckets[bid]["e"] <= now:
            out += _close(trigger, state, bid, now)
    return out


def _close(t: EventTrigger, state: dict, bid: str, now: float) -> list[Firing]:
    """Close every window of this proactive bucket that ended by `now`."""
    buckets = state["b"]
    b = buckets[bid]
    if t.after:
        del buckets[bid]
        if b["n"] < t.threshold:
            state["o"][bid] = b["ev"]
            return [Firing("triggered", b["e"], b["ev"], _labels(t, bid))]
        return []
    out = []
    while b["e"] <= now:
        if b["n"] < t.threshold and not b["fired"]:
            b["fired"] = True
            out.append(Firing("triggered", b["e"], b["ev"], _labels(t, bid)))
        # Windows are back to back; empty ones in a long gap are skipped in one step.
        skipped = max(0, int((now - b["e"]) // t.within))
        b["s"] = b["e"] + skipped * t.within
        b["e"] = b["s"] + t.within
        b["n"] = 0
    return out


def _prune(t: EventTrigger, state: dict, now: float) -> None:
    """Forget reactive sliding windows whose events are all older than `within`."""
    if t.posture != REACTIVE or not t.within:
        return
    buckets = state["b"]
    prefix = t.path + "|"
    for bid in [b for b in buckets if b.startswith(prefix)]:
        b = buckets[bid]
        if t.after:
            if b["e"] is not None and b["e"] <= now:
                del buckets[bid]
        elif not b["ts"] or b["ts"][-1] <= now - t.within:
            del buckets[bid]


def next_due(trigger: Trigger, state: dict) -> float | None:
    """When the clock next matters for this trigger (a proactive window ends), or None."""
    if trigger.type == "metric":
        return metrics.next_due(state)
    due = None
    for t in trigger.event_triggers:
        if t.posture != PROACTIVE:
            continue
        if not t.after and not t.for_each and _bid(t, ()) not in state["b"]:
            return float("-inf")  # not started: tick now
        prefix = t.path + "|"
        for bid, b in state["b"].items():
            if bid.startswith(prefix) and (due is None or b["e"] < due):
                due = b["e"]
    return due


# -- composites -------------------------------------------------------------------------------

def _composite(t: CompositeTrigger, state: dict, child_firings: list[Firing]) -> list[Firing]:
    out = []
    index = {child.path: i for i, child in enumerate(t.triggers)}
    for firing in child_firings:
        if firing.kind != "triggered":
            continue
        if t.require == 1 and t.type == "compound":
            out.append(Firing("triggered", firing.at, firing.event, firing.labels))
            continue
        fired = state["c"].setdefault(t.path, {})
        state["q"] += 1
        fired[str(index[firing.path])] = [firing.at, state["q"], firing.event]
        if t.within:
            for i in [i for i, (at, _, _) in fired.items() if at < firing.at - t.within]:
                del fired[i]
        if t.type == "compound":
            done = len(fired) >= t.require
        else:
            order = [int(i) for i, _ in sorted(fired.items(), key=lambda item: (item[1][0], item[1][1]))]
            done = order == list(range(len(t.triggers)))
        if done:
            del state["c"][t.path]
            out.append(Firing("triggered", firing.at, firing.event, firing.labels))
    return out


# -- running a trigger over a stream of events ------------------------------------------------

def simulate(trigger: Trigger, events, *, start: float, end: float,
             state: dict | None = None, max_firings: int | None = None) -> list[Firing]:
    """Run the trigger over events (oldest first) with the clock ticking exactly when windows
    close, from `start` to `end`: the replay and the preview. Exactly what on_tick at every
    deadline would do, but the deadlines are kept in a heap and only the buckets due are closed,
    so a replay with thousands of open windows does not scan them all for every event."""
    state = state if state is not None else new_state()
    proactive = [t for t in trigger.event_triggers if t.posture == PROACTIVE]
    composite = isinstance(trigger, CompositeTrigger)
    heap: list[tuple[float, str]] = []
    buckets = state["b"]

    def watch(bids) -> None:
        for bid in bids:
            b = buckets.get(bid)
            if b is not None and b["e"] is not None and bid.split("|", 1)[0] in paths:
                heapq.heappush(heap, (b["e"], bid))

    paths = {t.path for t in proactive}
    firings = on_tick(trigger, state, start)
    watch(list(buckets))

    def tick_until(limit: float) -> None:
        while heap and heap[0][0] <= limit:
            due = heap[0][0]
            popped = set()
            while heap and heap[0][0] <= due:
                popped.add(heapq.heappop(heap)[1])
            bids = [bid for bid in popped if bid in buckets and buckets[bid]["e"] <= due]
            if not bids:
                continue
            if composite:
                # Firings at one instant reach a composite in on_tick's order: child by child,
                # buckets in the order they were opened.
                bids = [bid for bid in buckets if bid in popped]
            firings.extend(_tick_bids(trigger, state, max(due, start), bids))
            watch(bids)

    for event in events:
        tick_until(event.occurred.timestamp())
        firings.extend(on_event(trigger, state, event))
        for t in proactive:
            # The event's bucket, if it has one (watch() skips a key without a bucket; a
            # deadline seen twice is closed once).
            watch([_bid(t, t.bucket_key(event))])
        if max_firings is not None and len(firings) >= max_firings:
            return firings
    tick_until(end)
    return firings


def _tick_bids(trigger: Trigger, state: dict, now: float, bids: list[str]) -> list[Firing]:
    """on_tick, for these buckets only."""
    if isinstance(trigger, CompositeTrigger):
        return _composite(trigger, state, [f for child in trigger.triggers for f in _tag(child, _tick_bids(child, state, now, bids))])
    if trigger.posture != PROACTIVE:
        return []
    out: list[Firing] = []
    prefix = trigger.path + "|"
    buckets = state["b"]
    for bid in bids:
        if bid.startswith(prefix) and bid in buckets and buckets[bid]["e"] <= now:
            out += _close(trigger, state, bid, now)
    return out
