"""Trigger parsing (errors name the JSON path), the sentence, the pre-fill and the widenings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from eventfeed.automations.describe import default_trigger, describe, widenings
from eventfeed.automations.triggers import TriggerError, name_filter, parse_trigger
from eventfeed.events.filters import Matchable
from eventfeed.events.patterns import glob_match
from tests.conftest import make_event


def paths(data) -> list[str]:
    with pytest.raises(TriggerError) as e:
        parse_trigger(data)
    return [p for p, _ in e.value.problems]


@pytest.mark.parametrize(
    "data,expected",
    [
        ([], ["trigger"]),
        ({"type": "metric"}, ["trigger.metric"]),
        ({"type": "gauge"}, ["trigger.type"]),
        ({"within": "5m"}, ["trigger.within"]),
        ({"threshold": True}, ["trigger.threshold"]),
        ({"posture": "Sometimes"}, ["trigger.posture"]),
        ({"match": {"prefect.resource.id": 3}}, ['trigger.match["prefect.resource.id"]']),
        ({"match_related": [{}, {"a": []}]}, ['trigger.match_related[1]["a"]']),
        ({"expect": ["ok", ""]}, ["trigger.expect[1]"]),
        ({"for_each": ["related:flow"]}, ["trigger.for_each[0]"]),
        ({"posture": "Proactive", "within": 9}, ["trigger.within"]),
        ({"type": "compound", "triggers": []}, ["trigger.triggers"]),
        ({"type": "compound", "require": 3, "triggers": [{}, {}]}, ["trigger.require"]),
        ({"type": "sequence", "require": 1, "triggers": [{}]}, ["trigger.require"]),
        ({"type": "sequence", "triggers": [{}, {"type": "compound", "triggers": [{"within": -1}]}]},
         ["trigger.triggers[1].triggers[0].within"]),
        ({"id": "nope"}, ["trigger.id"]),
    ],
)
def test_it_names_the_json_path_of_each_problem(data, expected):
    assert paths(data) == expected


def test_it_fills_prefects_defaults_and_keeps_ids():
    _, out = parse_trigger({"expect": "a.b", "id": "8e309cd2-020c-4b48-9649-851bc0014274"})
    assert out == {"type": "event", "id": "8e309cd2-020c-4b48-9649-851bc0014274", "match": {}, "match_related": {},
                   "after": [], "expect": ["a.b"], "for_each": [], "posture": "Reactive", "threshold": 1, "within": 0.0}


def test_it_raises_a_zero_proactive_window_to_10_seconds_like_prefect():
    trigger, out = parse_trigger({"posture": "Proactive"})
    assert trigger.within == out["within"] == 10.0


@pytest.mark.parametrize(
    "data,sentence",
    [
        ({"expect": ["x.y"], "match": {"prefect.resource.id": "r.*"}}, "Fires every time a x.y event from r.* occurs."),
        ({"expect": ["a"], "threshold": 3, "within": 60, "for_each": ["prefect.resource.id"]},
         "Fires when 3 a events occur within 1 minute, counted separately for each prefect.resource.id."),
        ({"expect": ["a"], "threshold": 5}, "Fires every 5th time an a event occurs."),
        ({"threshold": 2, "within": 10}, "Fires when 2 events occur within 10 seconds."),
        ({"expect": ["x"], "threshold": 22}, "Fires every 22nd time a x event occurs."),
        ({"after": ["w.started"], "expect": ["f.submitted"], "posture": "Proactive", "within": 300},
         "Fires if, after a w.started event, no f.submitted event follows within 5 minutes."),
        ({"expect": ["beat"], "posture": "Proactive", "within": 60}, "Fires if no beat event occurs within 1 minute."),
        ({"expect": ["a", "b"], "posture": "Proactive", "threshold": 2, "within": 60},
         "Fires if fewer than 2 a or b events occur within 1 minute."),
        ({"after": ["s"], "expect": ["b"], "posture": "Proactive", "threshold": 2, "within": 60},
         "Fires if, after a s event, fewer than 2 b events follow within 1 minute."),
        ({"type": "sequence", "within": 60, "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
         "Fires when these happen in this order within 1 minute: every time an a event occurs; then every time a b event occurs."),
        ({"type": "compound", "require": "any", "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
         "Fires when any one of these happen: every time an a event occurs; every time a b event occurs."),
        ({"match_related": {"prefect.resource.role": "flow", "prefect.resource.id": "prefect.flow.1"}},
         "Fires every time any event related to prefect.flow.1 (as flow) occurs."),
        # Several names read as one event of either name, singular or plural as the verb needs.
        ({"expect": ["x.Failed", "x.Crashed"]}, "Fires every time a x.Failed or x.Crashed event occurs."),
        ({"expect": ["x.Failed", "x.Crashed"], "posture": "Proactive", "within": 60},
         "Fires if no x.Failed or x.Crashed event occurs within 1 minute."),
        ({"expect": ["x.Failed", "x.Crashed"], "threshold": 3, "within": 60},
         "Fires when 3 x.Failed or x.Crashed events occur within 1 minute."),
    ],
)
def test_it_describes_a_trigger_in_one_sentence(data, sentence):
    assert describe(parse_trigger(data)[0]) == sentence


def test_it_prefills_prefects_default_and_offers_widenings():
    event = make_event("prefect.flow-run.Running", "prefect.flow-run.abc", related=[
        {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"},
        {"prefect.resource.id": "prefect.work-pool.k8s", "prefect.resource.role": "work-pool"},
        {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
        {"prefect.resource.id": "prefect.task-run.t", "prefect.resource.role": "task-run"},
    ])
    assert default_trigger(event)["match"] == {"prefect.resource.id": "prefect.flow-run.abc"}
    options = widenings(event)
    keys = [w["key"] for w in options["resources"]]
    assert keys == ["exact", "kind", "related:flow:prefect.flow.f1", "related:work-pool:prefect.work-pool.k8s",
                    "related:tag:prefect.tag.nightly"]
    related = options["resources"][2]["set"]
    assert related["match_related"] == {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"}
    assert related["for_each"] == ["prefect.resource.id"]
    assert options["names"][1]["set"] == {"expect": ["prefect.flow-run.*"]}
    absent = options["postures"][1]["set"]
    assert absent["posture"] == "Proactive" and absent["after"] == ["prefect.flow-run.Running"]
    # Every widening combined with the default is a valid trigger.
    for name, group in options.items():
        for option in group if name != "default" else ():
            parse_trigger({**default_trigger(event), **option["set"]})


def test_it_turns_event_patterns_into_a_database_name_filter():
    assert name_filter(parse_trigger({"expect": ["a.b", "c.*"]})[0]) == {"names": ("a.b",), "prefixes": ("c.",)}
    assert name_filter(parse_trigger({"expect": ["a.*.b"]})[0]) is None
    assert name_filter(parse_trigger({"expect": []})[0]) is None


# -- the compiled matchers agree with the event filter ------------------------------------------

NAMES = ["a.b.c", "a.b.d", "a.bc", "A.b.c", "b.y.z", "a.b.c.d", "a.b\nc"]
IDS = ["r.1", "r.10", "R.1", "x.y", "r.1.z", "tag.prod"]
ROLES = ["flow", "tag", "deployment"]
KEYS = ["k", "prefect.resource.name"]
VALUES = ["v", "V", "vv", "w.x", "a*b", "ü-é", "v\nw"]
PATTERNS = VALUES + IDS + ROLES + ["v*", "*", "?", "w.*", "*x", "!v", "!v*", "!?v", "r.1*", "R.*", "r.?", "a\\*b", "t*", "!tag", "!r.1"]
NAME_PATTERNS = NAMES + ["a.b.*", "a.*", "*", "*.c", "a.?.c", "a.b?", "A*", "*b*", "b.y.z"]

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=2)


@st.composite
def wire_events(draw):
    related = [
        {"prefect.resource.id": draw(st.sampled_from(IDS)), "prefect.resource.role": draw(st.sampled_from(ROLES)), **draw(labels_st)}
        for _ in range(draw(st.integers(0, 4)))
    ]
    return make_event(draw(st.sampled_from(NAMES)), draw(st.sampled_from(IDS)), related=related, **draw(labels_st))


@st.composite
def specs(draw):
    keys = KEYS + ["prefect.resource.id", "prefect.resource.role"]
    return {
        key: draw(st.one_of(st.sampled_from(PATTERNS), st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3)))
        for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))
    }


@st.composite
def event_triggers(draw):
    return {
        "match": draw(specs()),
        "match_related": draw(st.lists(specs(), max_size=2)),
        "after": draw(st.lists(st.sampled_from(NAME_PATTERNS), max_size=2)),
        "expect": draw(st.lists(st.sampled_from(NAME_PATTERNS), max_size=2)),
    }


@settings(max_examples=400, deadline=None)
@given(event_triggers(), st.lists(wire_events(), min_size=1, max_size=5))
def test_it_matches_events_exactly_as_the_event_filter_and_glob_match_do(data, events):
    t, _ = parse_trigger(data)
    for raw in events:
        event = Matchable.from_wire(raw)
        name = raw["event"]
        assert t.expects(name) == (not t.expect or any(glob_match(p, name) for p in t.expect))
        assert t.starts_after(name) == any(glob_match(p, name) for p in t.after)
        assert t.covers_resources(raw["resource"], raw["related"]) == t.resource_filter.matches(event)
        if t.covers(event) and t.required_ids is not None:
            # The live index files the trigger under these ids: a covered event carries one.
            scope, ids = t.required_ids
            carried = {raw["resource"]["prefect.resource.id"]} if scope == "resource" else {r["prefect.resource.id"] for r in raw["related"]}
            assert carried & ids


def test_it_names_the_exact_resource_ids_a_trigger_requires():
    def required(data):
        return parse_trigger(data)[0].required_ids

    assert required({"match": {"prefect.resource.id": "a.1"}}) == ("resource", frozenset({"a.1"}))
    assert required({"match": {"prefect.resource.id": ["a.1", "a.2", "!a.3"]}}) == ("resource", frozenset({"a.1", "a.2"}))
    assert required({"match": {"prefect.resource.id": "a.*"}, "match_related": [{"prefect.resource.role": "flow"},
                     {"prefect.resource.id": "f.1", "prefect.resource.role": "flow"}]}) == ("related", frozenset({"f.1"}))
    assert required({"match": {"prefect.resource.id": ["a.1", "b.*"]}}) is None
    assert required({"match": {"prefect.resource.id": "!a.1"}}) is None
    assert required({"expect": ["x"]}) is None
