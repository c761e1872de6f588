"""The trigger model: triggers in Prefect's shapes, parsed with errors that name the JSON path,
their matching built on the event store's filter objects, and what a firing is. Evaluation is
core.py and metrics.py; the sentences and pre-fills are describe.py.

    {"type": "event", "match": {...}, "match_related": {...} | [...], "after": [...],
     "expect": [...], "for_each": [...], "posture": "Reactive" | "Proactive",
     "threshold": 1, "within": 0}
    {"type": "compound", "triggers": [...], "require": "any" | "all" | n, "within": s | null}
    {"type": "sequence", "triggers": [...], "within": s | null}
    {"type": "metric", ...}   (metrics.py's docstring)
"""

from __future__ import annotations

import operator as op
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
from eventfeed.events.patterns import _kind, matcher
from eventfeed.events.problems import NUL_RULE, Problems
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE

REACTIVE, PROACTIVE = "Reactive", "Proactive"
# Prefect's floor for a proactive window (a 0 is raised to it, a smaller one refused).
PROACTIVE_MIN_WITHIN = 10.0
MAX_DEPTH = 5
MAX_CHILDREN = 20

EVENT_KEYS = {"type", "id", "match", "match_related", "after", "expect", "for_each", "posture", "threshold", "within"}
COMPOSITE_KEYS = {"type", "id", "triggers", "require", "within"}
PREFECT = ("successes", "duration", "lateness")
GENERIC = ("count", "rate")
OPERATORS: dict[str, Callable[[float, float], bool]] = {"<": op.lt, "<=": op.le, ">": op.gt, ">=": op.ge}
METRIC_KEYS = {"type", "id", "match", "match_related", "posture", "metric", "expect",
               # The SDK's model_dump() sends an event trigger's fields with their defaults too.
               "after", "for_each", "threshold", "within"}
QUERY_KEYS = {"name", "operator", "threshold", "range", "firing_for", "of"}
FLOW_RUN = "prefect.flow-run."


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
        """The resource part of the trigger as the event store's filter (resource_filter()). The
        same object serves the live matcher and the preview's database pre-selection."""
        return resource_filter(self.match, self.match_related)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The event names this trigger looks at; `*` when it looks at every event."""
        if not self.expect:
            return ("*",)
        return self.after + self.expect

    # The matchers below run for every candidate event of every live evaluator: each is built
    # once per parsed trigger, from the filter's own pattern matchers and conditions.

    @cached_property
    def _expects(self) -> Callable[[str], bool]:
        return matcher(self.expect) if self.expect else _always

    @cached_property
    def _starts_after(self) -> Callable[[str], bool]:
        return matcher(self.after)

    @cached_property
    def _resources(self) -> Callable[[dict, list], bool]:
        return self.resource_filter.matches_resources

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


@dataclass(frozen=True)
class MetricTrigger:
    """A metric trigger (metrics.py evaluates it on the clock)."""

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
    def resource_filter(self) -> EventFilter:
        return resource_filter(self.match, self.match_related)

    @cached_property
    def _resources(self) -> Callable[[dict, list], bool]:
        return self.resource_filter.matches_resources

    @cached_property
    def _expects(self) -> Callable[[str], bool]:
        return matcher(self.expect) if self.expect else _always

    @cached_property
    def _of(self) -> Callable[[str], bool]:
        return matcher(self.of) if self.of else _always

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


Trigger = Union[EventTrigger, CompositeTrigger, MetricTrigger]


@dataclass
class Firing:
    """What evaluating a trigger (core.py, metrics.py) gives: the engine records it."""

    kind: str  # "triggered" or "resolved"
    at: float
    event: dict | None  # the triggering event (id, occurred, event, resource, related)
    labels: dict = field(default_factory=dict)
    path: str = "trigger"


def _labels(spec: dict) -> tuple[LabelCondition, ...]:
    return tuple(LabelCondition(key, tuple(v) if isinstance(v, list) else (v,)) for key, v in spec.items())


def resource_filter(match: dict, match_related: tuple[dict, ...]) -> EventFilter:
    """A trigger's resources as the event store's filter: `match` on the primary resource, each
    `match_related` spec on some related resource."""
    conditions = [ResourceCondition("resource", labels=_labels(match))] if match else []
    conditions += [ResourceCondition("related", labels=_labels(spec)) for spec in match_related if spec]
    return EventFilter(resources=tuple(conditions))


def _always(_name: str) -> bool:
    return True


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


# -- parsing ----------------------------------------------------------------------------------

class _Reader(Problems):
    def strings(self, value: Any, path: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.wrong_type(path, "a list of strings", value)
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
            self.wrong_type(path, "an object of label: pattern or label: [patterns]", value)
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
            self.wrong_type(path, "a number of seconds", value)
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
        r.wrong_type(path, "an object", data)
        return None
    kind = data.get("type", _default_type(data))
    if kind not in ("event", "compound", "sequence", "metric"):
        r.fail(f"{path}.type", 'must be "event", "compound", "sequence" or "metric"')
        return None
    if kind == "metric":
        trigger_id = data.get("id") or str(uuid.uuid4())
        try:
            trigger_id = str(uuid.UUID(str(trigger_id)))
        except ValueError:
            r.fail(f"{path}.id", "must be a UUID")
        return parse_metric(r, data, path, trigger_id, depth)
    allowed = EVENT_KEYS if kind == "event" else COMPOSITE_KEYS
    r.unknown_fields(data, path, allowed, f"{'an' if kind == 'event' else 'a'} {kind} trigger")
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


# -- parsing a metric trigger --------------------------------------------------------------------

def parse_metric(r: _Reader, data: dict, path: str, trigger_id: str, depth: int) -> tuple[MetricTrigger, dict] | None:
    before = len(r.problems)
    if depth > 0:
        r.fail(path, "a metric trigger cannot be inside a compound or sequence trigger (Eventfeed evaluates metrics on their own)")
        return None
    r.unknown_fields(data, path, METRIC_KEYS, "a metric trigger")
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
    r.unknown_fields(q, f"{path}.metric", QUERY_KEYS, "a metric query")
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
