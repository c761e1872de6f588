"""Triggers in Prefect's shapes: parsing with errors that name the JSON path, matching built on
the event store's filter objects, and a one-sentence description.

    {"type": "event", "match": {...}, "match_related": {...} | [...], "after": [...],
     "expect": [...], "for_each": [...], "posture": "Reactive" | "Proactive",
     "threshold": 1, "within": 0}
    {"type": "compound", "triggers": [...], "require": "any" | "all" | n, "within": s | null}
    {"type": "sequence", "triggers": [...], "within": s | null}
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Union

from eventfeed.events.filters import (
    EventFilter,
    FilterError,
    LabelCondition,
    Matchable,
    ResourceCondition,
)
from eventfeed.events.patterns import _kind, glob_regex
from eventfeed.events.problems import NUL_RULE, Problems
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE, json_type

REACTIVE, PROACTIVE = "Reactive", "Proactive"
# Prefect's floor for a proactive window (a 0 is raised to it, a smaller one refused).
PROACTIVE_MIN_WITHIN = 10.0
MAX_DEPTH = 5
MAX_CHILDREN = 20

EVENT_KEYS = {"type", "id", "match", "match_related", "after", "expect", "for_each", "posture", "threshold", "within"}
COMPOSITE_KEYS = {"type", "id", "triggers", "require", "within"}


class TriggerError(FilterError):
    """Bad trigger, action or automation input: a list of (JSON path, rule)."""


# -- the parsed trigger -----------------------------------------------------------------------

@dataclass(frozen=True)
class EventTrigger:
    path: str
    id: str
    match: dict
    match_related: tuple[dict, ...]
    after: tuple[str, ...]
    expect: tuple[str, ...]
    for_each: tuple[str, ...]  # sorted, as Prefect builds the bucket key
    posture: str
    threshold: int
    within: float
    type: str = "event"

    @cached_property
    def resource_filter(self) -> EventFilter:
        """The resource part of the trigger as the event store's filter: `match` on the primary
        resource, each `match_related` spec on some related resource. The same object serves
        the live matcher (`matches`) and the preview's database pre-selection (`queryset`)."""
        conditions = []
        if self.match:
            conditions.append(ResourceCondition("resource", labels=_labels(self.match)))
        for spec in self.match_related:
            if spec:
                conditions.append(ResourceCondition("related", labels=_labels(spec)))
        return EventFilter(resources=tuple(conditions))

    @property
    def patterns(self) -> tuple[str, ...]:
        """The event names this trigger looks at; `*` when it looks at every event."""
        if not self.expect:
            return ("*",)
        return self.after + self.expect

    # The matchers below run for every candidate event of every live evaluator: each is built
    # once per parsed trigger and answers without re-reading the patterns.

    @cached_property
    def _expects(self) -> Callable[[str], bool]:
        return pattern_matcher(self.expect) if self.expect else _always

    @cached_property
    def _starts_after(self) -> Callable[[str], bool]:
        return pattern_matcher(self.after)

    @cached_property
    def _resources(self) -> Callable[[dict, list], bool]:
        return resource_matcher(self.match, self.match_related)

    @cached_property
    def required_ids(self) -> tuple[str, frozenset[str]] | None:
        """("resource", ids) when the primary resource must have one of these exact ids,
        ("related", ids) when some related resource must; None when no exact id is required.
        The live index files the trigger under those ids, so an event meets it only when it
        carries one of them."""
        def exact_ids(spec: dict) -> frozenset[str] | None:
            value = spec.get(RESOURCE_ID)
            values = value if isinstance(value, list) else [value] if value is not None else []
            positive = [v for v in values if not v.startswith("!")]
            if positive and all(_kind(v) == "exact" for v in positive):
                return frozenset(positive)
            return None

        ids = exact_ids(self.match) if self.match else None
        if ids is not None:
            return ("resource", ids)
        for spec in self.match_related:
            ids = exact_ids(spec)
            if ids is not None:
                return ("related", ids)
        return None

    def covers_resources(self, resource: dict, related: list) -> bool:
        """The resource half of `covers`, for a caller that has already matched the name."""
        return self._resources(resource, related)

    def expects(self, name: str) -> bool:
        return self._expects(name)

    def starts_after(self, name: str) -> bool:
        return self._starts_after(name)

    def covers(self, event: Matchable) -> bool:
        """Could this event change the trigger's state? (name, then resources)"""
        return self.covers_raw(event.event, event.resource, event.related)

    def covers_raw(self, name: str, resource: dict, related: list) -> bool:
        """`covers` on the parts of a wire event, before anything is parsed."""
        if not (self._expects(name) or self._starts_after(name)):
            return False
        return self._resources(resource, related)

    def bucket_key(self, event: Matchable) -> tuple[str, ...]:
        return tuple(find_label(event, label) or "" for label in self.for_each)

    @property
    def event_triggers(self) -> list["EventTrigger"]:
        return [self]


@dataclass(frozen=True)
class CompositeTrigger:
    path: str
    id: str
    type: str  # "compound" or "sequence"
    triggers: tuple["Trigger", ...]
    require: int  # how many child firings: len(triggers) for "all" and for sequences
    within: float | None

    @property
    def event_triggers(self) -> list[EventTrigger]:
        out: list[EventTrigger] = []
        for child in self.triggers:
            out.extend(child.event_triggers)
        return out


# A MetricTrigger (metrics.py) is a Trigger too; it has no event triggers.
Trigger = Union[EventTrigger, CompositeTrigger]


def _labels(spec: dict) -> tuple[LabelCondition, ...]:
    return tuple(LabelCondition(key, tuple(v) if isinstance(v, list) else (v,)) for key, v in spec.items())


def find_label(event: Matchable, label: str) -> str | None:
    """Prefect's find_resource_label: `related:<role>:<label>` reads the first related resource
    with that role; anything else is a label of the primary resource."""
    if label.startswith("related:"):
        _, role, name = label.split(":", 2)
        for resource in event.related:
            if resource.get(RESOURCE_ROLE) == role:
                return resource.get(name)
        return None
    return event.resource.get(label)


def _always(_value) -> bool:
    return True


def _never(_value) -> bool:
    return False


def pattern_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """`any(glob_match(p, value) for p in patterns)`, compiled: exact names in a set, prefixes
    in one str.startswith, the other globs in one regex."""
    exact = frozenset(p for p in patterns if _kind(p) == "exact")
    prefixes = tuple(p[:-1] for p in patterns if _kind(p) == "prefix")
    globs = [p for p in patterns if _kind(p) == "glob"]
    if "" in prefixes:
        return _always
    # glob_regex's patterns start with the (?s) flag, which may only come first in a regex.
    either = "|".join(f"(?:{glob_regex(p).removeprefix('(?s)')})" for p in globs)
    regex = re.compile(either, re.DOTALL).search if globs else None
    if not prefixes and regex is None:
        return exact.__contains__ if exact else _never

    def matches(value: str) -> bool:
        return value in exact or (bool(prefixes) and value.startswith(prefixes)) or (
            regex is not None and regex(value) is not None
        )

    return matches


def value_matcher(patterns: tuple[str, ...]) -> Callable[[str | None], bool]:
    """LabelCondition.matches_value, compiled: a missing label never matches; the positive
    patterns are ORed and every `!` pattern applies."""
    condition = LabelCondition("", patterns)
    if condition.positive and not condition.negative and all(_kind(p) == "exact" for p in condition.positive):
        # The common case (an id, a role, a state type): a set lookup, and None is never in it.
        return frozenset(condition.positive).__contains__
    positive = pattern_matcher(condition.positive) if condition.positive else None
    negative = pattern_matcher(condition.negative) if condition.negative else None

    def matches(value: str | None) -> bool:
        if value is None:
            return False
        if positive is not None and not positive(value):
            return False
        return negative is None or not negative(value)

    return matches


def spec_matcher(spec: dict) -> Callable[[dict], bool]:
    """One resource's labels (the id included, as on the wire) against a match specification."""
    checks = tuple((key, value_matcher(tuple(v) if isinstance(v, list) else (v,))) for key, v in spec.items())

    def matches(labels: dict) -> bool:
        for key, check in checks:
            if not check(labels.get(key)):
                return False
        return True

    return matches


def resource_matcher(match: dict, match_related: tuple[dict, ...]) -> Callable[[dict, list], bool]:
    """`resource_filter.matches` on a wire event's resource and related list: `match` on the
    primary resource, each `match_related` spec on some related resource. Like the filter, a
    related resource repeated with the same id and role counts with its first labels only."""
    primary = spec_matcher(match) if match else None
    related_specs = tuple(spec_matcher(spec) for spec in match_related if spec)

    def first_of_its_kind(related: list, i: int) -> bool:
        key = (related[i][RESOURCE_ID], related[i][RESOURCE_ROLE])
        return all((r[RESOURCE_ID], r[RESOURCE_ROLE]) != key for r in related[:i])

    def matches(resource: dict, related: list) -> bool:
        if primary is not None and not primary(resource):
            return False
        for spec in related_specs:
            if not any(spec(r) and first_of_its_kind(related, i) for i, r in enumerate(related)):
                return False
        return True

    return matches


# -- parsing ----------------------------------------------------------------------------------

class _Reader(Problems):
    def strings(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(path, f"must be a list of strings, not {json_type(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                self.fail(f"{path}[{i}]", "must be a non-empty string")
            elif "\x00" in item:
                self.fail(f"{path}[{i}]", NUL_RULE)
            elif item not in out:
                out.append(item)
        return out

    def spec(self, value: Any, path: str) -> dict:
        """A ResourceSpecification: {label: pattern | [patterns]}."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be an object of label: pattern or label: [patterns], not {json_type(value)}")
            return {}
        out = {}
        for key, patterns in value.items():
            p = f'{path}["{key}"]'
            if "\x00" in key or any("\x00" in x for x in ([patterns] if isinstance(patterns, str) else patterns if isinstance(patterns, list) else []) if isinstance(x, str)):
                self.fail(p, NUL_RULE)
            elif isinstance(patterns, str):
                out[key] = patterns
            elif isinstance(patterns, list) and patterns and all(isinstance(x, str) for x in patterns):
                out[key] = patterns
            else:
                self.fail(p, "must be a string or a non-empty list of strings")
        return out

    def resource_specs(self, data: dict, path: str) -> tuple[dict, list[dict]]:
        """`match` and the non-empty `match_related` specs (one object or a list)."""
        match = self.spec(data.get("match"), f"{path}.match")
        related_raw = data.get("match_related")
        if isinstance(related_raw, list):
            related = [self.spec(item, f"{path}.match_related[{i}]") for i, item in enumerate(related_raw)]
        else:
            related = [self.spec(related_raw, f"{path}.match_related")]
        return match, [spec for spec in related if spec]

    def number(self, value: Any, path: str, *, allow_null: bool = False) -> float | None:
        if value is None and allow_null:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number of seconds, not {json_type(value)}")
            return None
        if value < 0:
            self.fail(path, "must be 0 or more seconds")
            return None
        return float(value)


def parse_trigger(data: Any, path: str = "trigger") -> tuple[Trigger, dict]:
    """(parsed trigger, normalised JSON with every default filled in), or TriggerError."""
    reader = _Reader()
    result = _parse(reader, data, path, 0)
    if reader.problems or result is None:
        raise TriggerError(reader.problems or [(path, "is not a valid trigger")])
    return result


def _default_type(data: dict) -> str:
    """The type a trigger without one has. The SDK's update_automation() dumps with
    exclude_unset, which leaves out every defaulted `type`: a CompoundTrigger is the composite
    with `require` (a required field), a SequenceTrigger the one without."""
    if "triggers" in data:
        return "compound" if "require" in data else "sequence"
    if data.get("posture") == "Metric" or "metric" in data:
        return "metric"
    return "event"


def _parse(r: _Reader, data: Any, path: str, depth: int) -> tuple[Trigger, dict] | None:
    if not isinstance(data, dict):
        r.fail(path, f"must be an object, not {json_type(data)}")
        return None
    kind = data.get("type", _default_type(data))
    if kind not in ("event", "compound", "sequence", "metric"):
        r.fail(f"{path}.type", 'must be "event", "compound", "sequence" or "metric"')
        return None
    if kind == "metric":
        from .metrics import parse_metric

        trigger_id = data.get("id") or str(uuid.uuid4())
        try:
            trigger_id = str(uuid.UUID(str(trigger_id)))
        except ValueError:
            r.fail(f"{path}.id", "must be a UUID")
        return parse_metric(r, data, path, trigger_id, depth)
    allowed = EVENT_KEYS if kind == "event" else COMPOSITE_KEYS
    for key in data:
        if key not in allowed:
            r.fail(f"{path}.{key}", f"is not a field of a {kind} trigger (expected one of: {', '.join(sorted(allowed))})")
    trigger_id = data.get("id") or str(uuid.uuid4())
    try:
        trigger_id = str(uuid.UUID(str(trigger_id)))
    except ValueError:
        r.fail(f"{path}.id", "must be a UUID")
    if kind == "event":
        return _parse_event(r, data, path, trigger_id)

    if depth >= MAX_DEPTH:
        r.fail(path, f"nests composite triggers more than {MAX_DEPTH} deep")
        return None
    children_raw = data.get("triggers")
    if not isinstance(children_raw, list) or not children_raw:
        r.fail(f"{path}.triggers", "must be a non-empty list of triggers")
        return None
    if len(children_raw) > MAX_CHILDREN:
        r.fail(f"{path}.triggers", f"has {len(children_raw)} triggers; the limit is {MAX_CHILDREN}")
        return None
    children, children_json = [], []
    for i, child in enumerate(children_raw):
        parsed = _parse(r, child, f"{path}.triggers[{i}]", depth + 1)
        if parsed is not None:
            children.append(parsed[0])
            children_json.append(parsed[1])
    within = r.number(data.get("within"), f"{path}.within", allow_null=True)
    n = len(children_raw)
    require_raw = data.get("require", "all") if kind == "compound" else "all"
    if kind == "sequence" and "require" in data:
        r.fail(f"{path}.require", "is not a field of a sequence trigger (a sequence needs all of its triggers, in order)")
    if require_raw == "all":
        require = n
    elif require_raw == "any":
        require = 1
    elif isinstance(require_raw, int) and not isinstance(require_raw, bool) and 1 <= require_raw <= n:
        require = require_raw
    else:
        r.fail(f"{path}.require", f'must be "any", "all" or a whole number from 1 to {n}')
        require = n
    if r.problems:
        return None
    out = {"type": kind, "id": trigger_id, "triggers": children_json, "within": within}
    if kind == "compound":
        out["require"] = require_raw
    return CompositeTrigger(path, trigger_id, kind, tuple(children), require, within), out


def _parse_event(r: _Reader, data: dict, path: str, trigger_id: str) -> tuple[Trigger, dict] | None:
    before = len(r.problems)
    match, related = r.resource_specs(data, path)
    after = r.strings(data.get("after"), f"{path}.after")
    expect = r.strings(data.get("expect"), f"{path}.expect")
    for_each = r.strings(data.get("for_each"), f"{path}.for_each")
    for i, label in enumerate(for_each):
        if label.startswith("related:") and (label.count(":") < 2 or not all(label.split(":", 2)[1:])):
            r.fail(f"{path}.for_each[{i}]", "a related label is written related:<role>:<label>, e.g. related:flow:prefect.resource.id")
    posture = data.get("posture", REACTIVE)
    if posture not in (REACTIVE, PROACTIVE):
        r.fail(f"{path}.posture", 'must be "Reactive" or "Proactive" (a metric trigger has "type": "metric")')
    threshold = data.get("threshold", 1)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        r.fail(f"{path}.threshold", "must be a whole number of at least 1")
    within = r.number(data.get("within", 0), f"{path}.within")
    if posture == PROACTIVE and within is not None:
        if within == 0:
            within = PROACTIVE_MIN_WITHIN
        elif within < PROACTIVE_MIN_WITHIN:
            r.fail(f"{path}.within", f"a proactive trigger needs a window of at least {PROACTIVE_MIN_WITHIN:g} seconds")
    if len(r.problems) > before:
        return None
    out = {
        "type": "event",
        "id": trigger_id,
        "match": match,
        "match_related": related_json(related),
        "after": after,
        "expect": expect,
        "for_each": for_each,
        "posture": posture,
        "threshold": threshold,
        "within": within,
    }
    trigger = EventTrigger(
        path=path,
        id=trigger_id,
        match=match,
        match_related=tuple(related),
        after=tuple(after),
        expect=tuple(expect),
        for_each=tuple(sorted(for_each)),
        posture=posture,
        threshold=threshold,
        within=within,
    )
    return trigger, out


def related_json(related: list[dict]) -> dict | list[dict]:
    """`match_related` as stored: one spec as an object, several as a list, none as {}."""
    return related[0] if len(related) == 1 else related if related else {}


def name_filter(trigger: EventTrigger) -> dict[str, tuple[str, ...]] | None:
    """The trigger's event names as an EventFilter's names/prefixes, or None when a pattern is a
    glob the database filter cannot say (the Python matcher then does the work)."""
    names, prefixes = [], []
    for pattern in trigger.after + trigger.expect:
        kind = _kind(pattern)
        if kind == "exact":
            names.append(pattern)
        elif kind == "prefix" and pattern != "*":
            prefixes.append(pattern[:-1])
        else:
            return None
    if not trigger.expect:
        return None
    return {"names": tuple(names), "prefixes": tuple(prefixes)}


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


def _spec_text(spec: dict) -> str:
    parts = []
    for key, value in spec.items():
        values = value if isinstance(value, list) else [value]
        shown = " or ".join(values)
        parts.append(shown if key == RESOURCE_ID else f"{key}={shown}")
    return ", ".join(parts)


def _event_phrase(t: EventTrigger, names: tuple[str, ...]) -> str:
    out = _names(names)
    if t.match:
        out += f" from {_spec_text(t.match)}"
    for spec in t.match_related:
        role = spec.get(RESOURCE_ROLE)
        rest = {k: v for k, v in spec.items() if k != RESOURCE_ROLE}
        what = _spec_text(rest) or "any resource"
        out += f" related to {what}" + (f" (as {role if isinstance(role, str) else ' or '.join(role)})" if role else "")
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


def describe(t: Trigger) -> str:
    """What the trigger does, in one sentence."""
    if t.type == "metric":
        from .metrics import describe_metric

        return describe_metric(t)
    if isinstance(t, CompositeTrigger):
        parts = [describe(child).removeprefix("Fires ").rstrip(".") for child in t.triggers]
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
                missing = f"no {_names(t.expect)} follows"
            else:
                missing = f"fewer than {t.threshold} {_plural(_names(t.expect))} follow"
            return f"Fires if, after {_a(_event_phrase(t, t.after))}, {missing} within {_seconds(t.within)}{each}."
        if t.threshold == 1:
            missing = f"no {_event_phrase(t, t.expect)} occurs"
        else:
            missing = f"fewer than {t.threshold} {_plural(_event_phrase(t, t.expect))} occur"
        return f"Fires if {missing} within {_seconds(t.within)}{each}."
    phrase = _event_phrase(t, t.expect)
    start = f"after {_a(_event_phrase(t, t.after))}, " if t.after else ""
    if t.threshold == 1:
        core = f"every time {start}{_a(phrase)} occurs"
        if t.after and t.within:
            core += f" within {_seconds(t.within)}"
        return f"Fires {core}{each}."
    if t.within:
        return f"Fires when {start}{t.threshold} {_plural(phrase)} occur within {_seconds(t.within)}{each}."
    return f"Fires {start}every {_ordinal(t.threshold)} time {_a(phrase)} occurs{each}."
