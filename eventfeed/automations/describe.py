"""A trigger in words: the one sentence that says what it does (`describe`), and the pre-fill
and one-click widenings that "Automate" offers from an event, each with its sentence."""

from __future__ import annotations

from collections.abc import Mapping

from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE

from .triggers import PROACTIVE, REACTIVE, CompositeTrigger, EventTrigger, MetricTrigger, Trigger

# -- prefilled triggers and widenings ---------------------------------------------------------

# A run in one of these states is over: a trigger on "this run" could never fire again.
TERMINAL_STATES = ("Completed", "Failed", "Crashed", "Cancelled", "TimedOut")
RUN_KINDS = ("prefect.flow-run.*", "prefect.task-run.*")


def default_trigger(event: dict) -> dict:
    """The pre-fill for "Automate" on an event: Prefect's (this resource, this event name),
    except from a finished run, where it is this event for every run of the same deployment (or
    flow), which fires next time instead of never."""
    trigger = {
        "type": "event", "match": {}, "match_related": {}, "after": [], "expect": [], "for_each": [],
        "posture": REACTIVE, "threshold": 1, "within": 0,
    }
    groups = widenings(event)
    for group in ("resources", "names", "postures"):
        chosen = next(w for w in groups[group] if w["key"] == groups["default"][group])
        trigger.update(chosen["set"])
    return trigger


def _finished_run(event: dict) -> bool:
    kind = kind_of(event["resource"][RESOURCE_ID])
    return kind in RUN_KINDS and event["event"].rpartition(".")[2] in TERMINAL_STATES


def _kind_words(kind: str) -> str:
    """`prefect.flow-run.*` → "flow run", as the sentences say it."""
    head = kind.removesuffix(".*").rpartition(".")[2]
    return head.replace("-", " ") if kind.endswith(".*") else kind


def kind_of(resource_id: str) -> str:
    """`prefect.flow-run.abc` → `prefect.flow-run.*`; an id without dots stays exact."""
    head, dot, _ = resource_id.rpartition(".")
    return f"{head}.*" if dot else resource_id


RELATED_ROLES = ("flow", "deployment", "work-pool", "work-queue", "tag")


def widenings(event: dict) -> dict[str, list[dict]]:
    """One-click changes to the default trigger, grouped; each has a plain sentence and the
    trigger fields it sets."""
    rid = event["resource"][RESOURCE_ID]
    kind = kind_of(rid)
    name = event["event"]
    family = kind_of(name)
    this = event["resource"].get("prefect.resource.name")
    words = _kind_words(kind) if kind != rid else "resource"
    resources = [
        {"key": "exact", "sentence": f"Only this {words}, {this} ({rid})" if this else f"Only this {words}, {rid}",
         "set": {"match": {RESOURCE_ID: rid}, "match_related": {}, "for_each": []}},
    ]
    if kind != rid:
        resources.append(
            {"key": "kind", "sentence": f"Every {words} ({kind}), each counted on its own",
             "set": {"match": {RESOURCE_ID: kind}, "match_related": {}, "for_each": [RESOURCE_ID]}}
        )
    seen = set()
    for related in event.get("related") or []:
        role = related.get(RESOURCE_ROLE)
        related_id = related.get(RESOURCE_ID)
        if role not in RELATED_ROLES or (role, related_id) in seen:
            continue
        seen.add((role, related_id))
        label = related.get("prefect.resource.name") or related_id
        resources.append(
            {"key": f"related:{role}:{related_id}",
             "sentence": (f"Every {words} of the {role} {label}, each counted on its own" if role != "tag"
                          else f"Every {words} tagged {label.removeprefix('prefect.tag.')}, each counted on its own"),
             "set": {"match": {RESOURCE_ID: kind}, "match_related": {RESOURCE_ID: related_id, RESOURCE_ROLE: role},
                     "for_each": [RESOURCE_ID]}}
        )
    names = [{"key": "name", "sentence": f"This event, {name}", "set": {"expect": [name]}}]
    if family != name:
        names.append({"key": "family", "sentence": f"Any event of this family, {family}", "set": {"expect": [family]}})
    postures = [
        {"key": "observe", "sentence": "Fire when it happens (Reactive)",
         "set": {"posture": REACTIVE, "after": [], "within": 0}},
        {"key": "absent", "sentence": f"Fire when, after {name}, it does not happen within 5 minutes (Proactive)",
         "set": {"posture": PROACTIVE, "after": [name], "within": 300}},
    ]
    default = {"resources": "exact", "names": "name", "postures": "observe"}
    if _finished_run(event):
        related = [w["key"] for w in resources if w["key"].startswith("related:")]
        for role in ("deployment", "flow"):
            found = next((key for key in related if key.startswith(f"related:{role}:")), None)
            if found:
                default["resources"] = found
                break
    return {"resources": resources, "names": names, "postures": postures, "default": default}


# -- a sentence -------------------------------------------------------------------------------

def _seconds(s: float) -> str:
    s = float(s)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size and s % size == 0:
            n = int(s // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{s:g} second{'s' if s != 1 else ''}"


def _names(patterns: tuple[str, ...]) -> str:
    """Singular, whatever the count ("a X or Y event"): _plural makes "X or Y events"."""
    if not patterns:
        return "any event"
    return " or ".join(patterns) + " event"


def _resource(value: str, known: Mapping[str, str]) -> str:
    """An exact resource id by its name where known ("the deployment nightly"); else the id."""
    name = known.get(value)
    if not name:
        return value
    kind = kind_of(value)
    return f"the {_kind_words(kind)} {name}" if kind != value else name


def _spec_text(spec: dict, known: Mapping[str, str]) -> str:
    parts = []
    for key, value in spec.items():
        values = value if isinstance(value, list) else [value]
        if key == RESOURCE_ID:
            parts.append(" or ".join(_resource(v, known) for v in values))
        else:
            parts.append(f"{key}={' or '.join(values)}")
    return ", ".join(parts)


def _event_phrase(t: EventTrigger, names: tuple[str, ...], known: Mapping[str, str]) -> str:
    out = _names(names)
    if t.match:
        out += f" from {_spec_text(t.match, known)}"
    for spec in t.match_related:
        role = spec.get(RESOURCE_ROLE)
        rest = {k: v for k, v in spec.items() if k != RESOURCE_ROLE}
        what = _spec_text(rest, known) or "any resource"
        roles = role if isinstance(role, str) else " or ".join(role or [])
        # "related to the deployment nightly" says its role already.
        said = isinstance(role, str) and what.startswith(f"the {role.replace('-', ' ')} ")
        out += f" related to {what}" + (f" (as {roles})" if roles and not said else "")
    return out


def _no(phrase: str) -> str:
    """ "no x event", "no event from r" (never "no any event")."""
    return "no " + phrase.removeprefix("any ")


def resource_ids(t: Trigger) -> set[str]:
    """The exact resource ids a trigger names (not patterns or negations): what describe()
    would show by name."""
    if isinstance(t, CompositeTrigger):
        return set().union(*(resource_ids(child) for child in t.triggers))
    out = set()
    for spec in [getattr(t, "match", None) or {}, *(getattr(t, "match_related", None) or [])]:
        value = spec.get(RESOURCE_ID)
        for v in value if isinstance(value, list) else [value] if value else []:
            if isinstance(v, str) and "*" not in v and not v.startswith("!"):
                out.add(v)
    return out


def _a(phrase: str) -> str:
    """The phrase with its article: "a x event", "an acme event", "any event"."""
    if phrase.startswith("any "):
        return phrase
    return ("an " if phrase[:1].lower() in "aeiou" else "a ") + phrase


def _plural(phrase: str) -> str:
    """ "x event from r" → "x events from r"; "any event" stays."""
    if phrase.startswith("any event"):
        return "events" + phrase.removeprefix("any event")
    return phrase.replace(" event", " events", 1) if " events" not in phrase else phrase


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe(t: Trigger, known: Mapping[str, str] | None = None) -> str:
    """What the trigger does, in one sentence; `known` names resources by id (resource_ids)."""
    known = known or {}
    if t.type == "metric":
        return describe_metric(t)
    if isinstance(t, CompositeTrigger):
        parts = [describe(child, known).removeprefix("Fires ").rstrip(".") for child in t.triggers]
        within = f" within {_seconds(t.within)}" if t.within else ""
        if t.type == "sequence":
            return "Fires when these happen in this order" + within + ": " + "; then ".join(parts) + "."
        how = "all" if t.require == len(t.triggers) else "any one" if t.require == 1 else f"{t.require}"
        return f"Fires when {how} of these happen{within}: " + "; ".join(parts) + "."
    each = ""
    if t.for_each:
        each = ", counted separately for each " + " and ".join(t.for_each)
    if t.posture == PROACTIVE:
        if t.after:
            if t.threshold == 1:
                missing = f"{_no(_names(t.expect))} follows"
            else:
                missing = f"fewer than {t.threshold} {_plural(_names(t.expect))} follow"
            return f"Fires if, after {_a(_event_phrase(t, t.after, known))}, {missing} within {_seconds(t.within)}{each}."
        if t.threshold == 1:
            missing = f"{_no(_event_phrase(t, t.expect, known))} occurs"
        else:
            missing = f"fewer than {t.threshold} {_plural(_event_phrase(t, t.expect, known))} occur"
        return f"Fires if {missing} within {_seconds(t.within)}{each}."
    phrase = _event_phrase(t, t.expect, known)
    after = f"after {_a(_event_phrase(t, t.after, known))}" if t.after else ""
    if t.threshold == 1:
        if after:
            within = f" within {_seconds(t.within)}" if t.within else ""
            return f"Fires every time {_a(phrase)} occurs{within} {after}{each}."
        return f"Fires every time {_a(phrase)} occurs{each}."
    if t.within:
        lead = f"when, {after}, " if after else "when "
        return f"Fires {lead}{t.threshold} {_plural(phrase)} occur within {_seconds(t.within)}{each}."
    lead = f"{after}, " if after else ""
    return f"Fires {lead}every {_ordinal(t.threshold)} time {_a(phrase)} occurs{each}."


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
