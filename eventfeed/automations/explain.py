"""Why a trigger did or did not fire: each condition it checks, with the part of the event it
read, and what its buckets held before and after. Pure (no database): the "Test an event" API
and page, the automation page's state view and the live evaluation records all build on it.

A check is {"path": JSON path in the trigger, "ok": bool, "says": a sentence}; `reasons` are the
sentences of the failed checks, or, when every condition passed, what the count did.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

from eventfeed.events.filters import LabelCondition, Matchable
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE
from eventfeed.events.wire import iso

from . import core
from .describe import _seconds
from .triggers import PROACTIVE, REACTIVE, CompositeTrigger, EventTrigger, Trigger


def at(ts: float | None) -> str | None:
    if ts is None:
        return None
    return iso(datetime.fromtimestamp(ts, timezone.utc))


def _patterns(value) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def _shown(patterns: tuple[str, ...]) -> str:
    return " or ".join(patterns)


def _label_checks(spec: dict, labels: dict, path: str) -> list[dict]:
    out = []
    for key, wanted in spec.items():
        patterns = _patterns(wanted)
        value = labels.get(key)
        ok = LabelCondition(key, patterns).matches_value(value)
        if value is None:
            says = f"the resource has no {key} label (a missing label never matches, not even a negated pattern)"
        elif ok:
            says = f"{key} = {value} matches {_shown(patterns)}"
        else:
            says = f"{key} = {value} does not match {_shown(patterns)}"
        out.append({"path": f'{path}["{key}"]', "ok": ok, "says": says})
    return out


def name_checks(t: EventTrigger, name: str) -> list[dict]:
    expected, opens = t.expects(name), bool(t.after) and t.starts_after(name)
    if expected or opens:
        parts = []
        if opens:
            parts.append(f"{name} is an `after` event ({_shown(t.after)}): it opens a window")
        if expected:
            parts.append(f"{name} is expected ({_shown(t.expect) if t.expect else 'any event'})")
        return [{"path": f"{t.path}.expect", "ok": True, "says": "; ".join(parts)}]
    says = f"the event name {name} is not expected ({_shown(t.expect)})"
    if t.after:
        says += f" and is not an `after` event ({_shown(t.after)})"
    return [{"path": f"{t.path}.expect", "ok": False, "says": says}]


def resource_checks(t: EventTrigger, resource: dict, related: list) -> list[dict]:
    out = _label_checks(t.match, resource, f"{t.path}.match") if t.match else []
    for i, spec in enumerate(t.match_related):
        path = f"{t.path}.match_related" + (f"[{i}]" if len(t.match_related) > 1 else "")
        fits = [r for r in related if all(c["ok"] for c in _label_checks(spec, r, path))]
        if fits:
            r = fits[0]
            out.append({"path": path, "ok": True,
                        "says": f"related resource {r.get(RESOURCE_ID)} (role {r.get(RESOURCE_ROLE)}) satisfies it"})
            continue
        if not related:
            out.append({"path": path, "ok": False, "says": "the event has no related resources"})
            continue
        # The related resource that satisfies most of the spec says best what is missing.
        best = max(related, key=lambda r: sum(c["ok"] for c in _label_checks(spec, r, path)))
        failed = [c["says"] for c in _label_checks(spec, best, path) if not c["ok"]]
        out.append({"path": path, "ok": False,
                    "says": f"no related resource satisfies it; the closest, {best.get(RESOURCE_ID)} "
                            f"(role {best.get(RESOURCE_ROLE)}): " + "; ".join(failed)})
    return out


def key_labels(t: EventTrigger, bid: str) -> dict:
    return dict(zip(t.for_each, json.loads(bid.split("|", 1)[1])))


def bucket_view(t: EventTrigger, bid: str, b: dict | None, now: float | None = None) -> dict | None:
    """A bucket as the page and the API show it."""
    if b is None:
        return None
    count = max(b["n"], 0)
    view = {"key": key_labels(t, bid), "count": count, "threshold": t.threshold, "within": t.within,
            "start": at(b["s"]), "end": at(b["e"])}
    if t.posture == PROACTIVE:
        view["due"] = at(b["e"])
        if now is not None and b["e"] is not None:
            view["due_in"] = round(b["e"] - now, 3)
        view["will_fire"] = count < t.threshold and not b.get("fired")
    return view


def _bucket_story(t: EventTrigger, before: dict | None, after: dict | None, fired: bool, event: Matchable) -> str:
    name = event.event
    win = f" within {_seconds(t.within)}" if t.within else ""
    if t.posture == REACTIVE:
        if fired:
            return f"it completes the count ({t.threshold} of {t.threshold}{win}): the trigger fires"
        if t.after and before is None and after is None and t.expects(name):
            return f"no `after` window is open for this key ({_shown(t.after)} has not occurred{win}): it is not counted"
        if after is None:
            return "it is not counted"
        if before is None and t.after and t.starts_after(name):
            end = f" until {at(after['e'])}" if after["e"] else ""
            return f"it opens a window{end}; {max(after['n'], 0)} of {t.threshold} expected events so far"
        return f"it is counted: {max(after['n'], 0)} of {t.threshold}{win}; not yet"
    # Proactive: events only ever keep a window from firing.
    if after is None and before is not None:
        return f"it brings the window to {t.threshold} of {t.threshold}: this window will not fire"
    if after is None:
        if t.after and not t.starts_after(name):
            return "no window is open for this key: it neither opens one nor counts"
        return "it is not counted"
    if before is None:
        return (f"it opens a window until {at(after['e'])}; the trigger fires then unless "
                f"{t.threshold} expected event{'s' if t.threshold != 1 else ''} arrive")
    return (f"it is counted in the window ending {at(after['e'])}: {max(after['n'], 0)} of {t.threshold} expected; "
            f"{'the window will not fire' if after['n'] >= t.threshold else 'it fires at the end unless more arrive'}")


def explain_event(trigger: Trigger, state: dict | None, event: Matchable, *, own_resource_id: str | None = None) -> dict:
    """What the trigger would do with this event in this state. Changes nothing: the core runs
    on copies."""
    state = state or core.new_state()
    children = []
    for t in trigger.event_triggers:
        children.append(_explain_one(t, state, event))
    if own_resource_id and event.resource.get(RESOURCE_ID) == own_resource_id:
        reasons = ["this is one of the automation's own events: an automation never evaluates them (no feedback loop)"]
        return {"would_fire": False, "would_resolve": False, "firings": [], "reasons": reasons, "triggers": children}
    trial = copy.deepcopy(state)
    firings = core.on_event(trigger, trial, event)
    out = {
        "would_fire": any(f.kind == "triggered" for f in firings),
        "would_resolve": any(f.kind == "resolved" for f in firings),
        "firings": [{"kind": f.kind, "at": at(f.at), "labels": f.labels} for f in firings],
        "triggers": children,
    }
    reasons = []
    for child in children:
        prefix = f"{child['path']}: " if isinstance(trigger, CompositeTrigger) else ""
        failed = [c["says"] for c in child["checks"] if not c["ok"]]
        reasons += [prefix + s for s in failed] or [prefix + child["outcome"]]
    if isinstance(trigger, CompositeTrigger):
        out["composites"] = composite_views(trigger, trial)
        if not out["would_fire"]:
            reasons += [f"{c['path']}: {c['says']}" for c in out["composites"]]
    out["reasons"] = reasons
    return out


def _explain_one(t: EventTrigger, state: dict, event: Matchable) -> dict:
    checks = name_checks(t, event.event) + resource_checks(t, event.resource, event.related)
    out = {"path": t.path, "posture": t.posture, "checks": checks, "matched": all(c["ok"] for c in checks)}
    if not out["matched"]:
        out["outcome"] = "it does not reach this trigger's counts"
        return out
    key = t.bucket_key(event)
    out["key"] = dict(zip(t.for_each, key))
    missing = [label for label, value in zip(t.for_each, key) if value == ""]
    if missing:
        checks.append({"path": f"{t.path}.for_each", "ok": True,
                       "says": f"the event has no {', '.join(missing)}: it shares the bucket of every event without it"})
    bid = core._bid(t, key)
    trial = copy.deepcopy(state)
    before = copy.deepcopy(trial["b"].get(bid))
    now = event.occurred.timestamp()
    firings = core.on_event(t, trial, event)
    after = trial["b"].get(bid)
    fired = any(f.kind == "triggered" for f in firings)
    out["before"] = bucket_view(t, bid, before, now)
    out["after"] = bucket_view(t, bid, after, now)
    out["fires"] = fired
    out["outcome"] = _bucket_story(t, before, after, fired, event)
    if any(f.kind == "resolved" for f in firings):
        out["outcome"] += "; it resolves the open incident for this key"
    return out


def composite_views(trigger: Trigger, state: dict) -> list[dict]:
    """Each compound/sequence trigger's children: which have fired (and when), which not yet."""
    out = []
    if not isinstance(trigger, CompositeTrigger):
        return out
    fired = state.get("c", {}).get(trigger.path, {})
    children = []
    for i, child in enumerate(trigger.triggers):
        got = fired.get(str(i))
        children.append({"path": child.path, "fired_at": at(got[0]) if got else None})
    need = "in order" if trigger.type == "sequence" else f"{trigger.require} of {len(trigger.triggers)}"
    done = sum(1 for c in children if c["fired_at"])
    within = f" within {_seconds(trigger.within)}" if trigger.within else ""
    out.append({"path": trigger.path, "type": trigger.type, "children": children,
                "says": f"{done} of {len(trigger.triggers)} children have fired; it needs {need}{within}"})
    for child in trigger.triggers:
        out += composite_views(child, state)
    return out


def state_view(trigger: Trigger, state: dict | None, now: float) -> dict:
    """The live state for the automation page: open buckets (with the proactive deadlines and
    when they fall due), open incidents, composite children."""
    state = state or core.new_state()
    buckets = []
    for t in trigger.event_triggers:
        prefix = t.path + "|"
        for bid, b in state.get("b", {}).items():
            if bid.startswith(prefix):
                view = bucket_view(t, bid, b, now)
                view["path"] = t.path
                view["posture"] = t.posture
                buckets.append(view)
        for bid in state.get("o", {}):
            if bid.startswith(prefix):
                buckets.append({"path": t.path, "posture": t.posture, "key": key_labels(t, bid), "incident": True})
    buckets.sort(key=lambda v: (v.get("due") or "~", v["path"]))
    due = core.next_due(trigger, state)
    return {"buckets": buckets, "composites": composite_views(trigger, state),
            "next_due": at(due) if due not in (None, float("-inf")) else None}
