"""The matching and counting core, table-driven, without a database.

The first table is issue 6's, observed on Prefect's server; the others pin down the behaviour we
chose where Prefect surprises (README, "Automations").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations.core import new_state, next_due, on_event, on_tick, simulate
from eventfeed.automations.triggers import parse_trigger
from eventfeed.events.filters import Matchable
from tests.conftest import make_event

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def ev(name: str, rid: str, at: float, related=None, **labels) -> Matchable:
    return Matchable.from_wire(make_event(name, rid, occurred=T0 + timedelta(seconds=at), related=related, **labels))


def customer(cid: str) -> list[dict]:
    return [{"prefect.resource.id": f"acme.customer.{cid}", "prefect.resource.role": "customer"}]


def run(trigger: dict, events: list[Matchable], *, until: float | None = None):
    parsed, _ = parse_trigger(trigger)
    last = max((e.occurred.timestamp() for e in events), default=T0.timestamp())
    return simulate(parsed, events, start=T0.timestamp(), end=until + T0.timestamp() if until is not None else last)


RES = [ev("t.ping", "t.res.a", 1), ev("t.ping", "t.res.a", 2), ev("t.ping", "t.res.b", 3),
       ev("t.ping", "t.res.a", 4), ev("t.ping", "t.res.b", 5)]
ORDERS = [ev("acme.order.placed", "acme.order.1", 1, related=customer("vip-1")),
          ev("acme.order.placed", "acme.order.2", 2, related=customer("reg-1")),
          ev("acme.order.placed", "acme.order.3", 3, related=customer("vip-1"))]

# (name, trigger, events, expected firings as (seconds after T0, for_each labels))
ISSUE_TABLE = [
    ("threshold per resource",
     {"match": {"prefect.resource.id": "t.res.*"}, "for_each": ["prefect.resource.id"], "threshold": 3, "within": 60,
      "posture": "Reactive"},
     RES, [(4, {"prefect.resource.id": "t.res.a"})]),
    ("negated id",
     {"match": {"prefect.resource.id": ["!t.res.b"]}, "threshold": 1, "posture": "Reactive"},
     RES, [(1, {}), (2, {}), (4, {})]),
    ("match_related role and id glob",
     {"match_related": {"prefect.resource.role": "customer", "prefect.resource.id": "acme.customer.vip-*"},
      "posture": "Reactive"},
     ORDERS, [(1, {}), (3, {})]),
    ("for_each related label",
     {"for_each": ["related:customer:prefect.resource.id"], "threshold": 2, "within": 60, "posture": "Reactive"},
     ORDERS, [(3, {"related:customer:prefect.resource.id": "acme.customer.vip-1"})]),
    ("compound all, b then a",
     {"type": "compound", "require": "all", "within": 60,
      "triggers": [{"expect": ["a"], "posture": "Reactive"}, {"expect": ["b"], "posture": "Reactive"}]},
     [ev("b", "r", 1), ev("a", "r", 2)], [(2, {})]),
    ("sequence a then b, events b a b",
     {"type": "sequence", "within": 60,
      "triggers": [{"expect": ["a"], "posture": "Reactive"}, {"expect": ["b"], "posture": "Reactive"}]},
     [ev("b", "r", 1), ev("a", "r", 2), ev("b", "r", 3)], [(3, {})]),
]


@pytest.mark.parametrize("name,trigger,events,expected", ISSUE_TABLE, ids=[row[0] for row in ISSUE_TABLE])
def test_it_fires_as_the_issue_table_says(name, trigger, events, expected):
    firings = run(trigger, events)
    assert [(f.at - T0.timestamp(), f.labels) for f in firings if f.kind == "triggered"] == expected


def test_it_fires_a_proactive_trigger_once_for_the_silent_resource_10_to_15_s_after_its_start():
    """Issue table row 5, with the clock ticking every 5 s as the live ticker would (or faster)."""
    trigger, _ = parse_trigger({"after": ["t.start"], "expect": ["t.heartbeat"], "for_each": ["prefect.resource.id"],
                                "posture": "Proactive", "threshold": 1, "within": 10})
    events = {0: ev("t.start", "x", 0), 1: ev("t.start", "y", 1), 4: ev("t.heartbeat", "y", 4)}
    state, fired = new_state(), []
    for second in range(0, 31):
        if second in events:
            fired += [(second, f) for f in on_event(trigger, state, events[second])]
        if second % 5 == 0:
            fired += [(second, f) for f in on_tick(trigger, state, T0.timestamp() + second)]
    assert [(s, f.labels, f.event["resource"]["prefect.resource.id"]) for s, f in fired] == [
        (10, {"prefect.resource.id": "x"}, "x")
    ]
    assert next_due(trigger, state) is None


@pytest.mark.parametrize(
    "label,trigger,events,expected",
    [
        # within 0 with threshold > 1: no time limit, every 3rd event (Prefect: ~60 s).
        ("within 0, threshold 3, hours apart", {"expect": ["x"], "threshold": 3, "within": 0},
         [ev("x", "r", h * 3600) for h in range(7)], [2 * 3600, 5 * 3600]),
        # No cooldown: a second burst inside the same minute fires again (Prefect: ignored).
        ("no cooldown after a reactive firing", {"expect": ["x"], "threshold": 2, "within": 60},
         [ev("x", "r", s) for s in (0, 1, 2, 3)], [1, 3]),
        ("threshold 1 within 60 fires every time", {"expect": ["x"], "within": 60},
         [ev("x", "r", s) for s in (0, 1, 2)], [0, 1, 2]),
        # Sliding, not tumbling: 3 events spread so no 60-s span holds 3 do not fire.
        ("sliding window", {"expect": ["x"], "threshold": 3, "within": 60},
         [ev("x", "r", s) for s in (0, 50, 100, 105)], [105]),
        ("expect glob matches dots", {"expect": ["prefect.flow-run.*"]},
         [ev("prefect.flow-run.Failed", "r", 1), ev("prefect.task-run.Failed", "r", 2)], [1]),
        ("empty expect means any event", {"match": {"prefect.resource.id": "r"}},
         [ev("a", "r", 1), ev("b", "r", 2), ev("b", "s", 3)], [1, 2]),
        ("missing label never matches, even negated", {"match": {"env": "!prod"}},
         [ev("a", "r", 1), ev("a", "r", 2, env="dev"), ev("a", "r", 3, env="prod")], [2]),
        ("negations all apply", {"match": {"prefect.resource.id": ["!a", "!b"]}},
         [ev("x", "a", 1), ev("x", "b", 2), ev("x", "c", 3)], [3]),
        ("positive patterns are ORed", {"match": {"prefect.resource.id": ["a", "b*"]}},
         [ev("x", "a", 1), ev("x", "bee", 2), ev("x", "c", 3)], [1, 2]),
        ("labels are ANDed", {"match": {"prefect.resource.id": "r*", "env": "prod"}},
         [ev("x", "r1", 1, env="prod"), ev("x", "r2", 2, env="dev"), ev("x", "s", 3, env="prod")], [1]),
        ("list of related specs: each satisfied by some related resource",
         {"match_related": [{"prefect.resource.role": "flow"}, {"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.prod"}]},
         [ev("x", "r", 1, related=[{"prefect.resource.id": "f", "prefect.resource.role": "flow"}]),
          ev("x", "r", 2, related=[{"prefect.resource.id": "f", "prefect.resource.role": "flow"},
                                    {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}])], [2]),
        ("reactive after opens a window", {"after": ["open"], "expect": ["hit"], "threshold": 2, "within": 10},
         [ev("hit", "r", 0), ev("open", "r", 1), ev("hit", "r", 2), ev("hit", "r", 3), ev("hit", "r", 4)], [3]),
        ("reactive after window closes", {"after": ["open"], "expect": ["hit"], "threshold": 2, "within": 10},
         [ev("open", "r", 1), ev("hit", "r", 2), ev("hit", "r", 20)], []),
        ("for_each buckets separately", {"expect": ["x"], "threshold": 2, "within": 60, "for_each": ["prefect.resource.id"]},
         [ev("x", "a", 1), ev("x", "b", 2), ev("x", "b", 3), ev("x", "a", 4)], [3, 4]),
        ("compound any", {"type": "compound", "require": "any", "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
         [ev("a", "r", 1), ev("b", "r", 2)], [1, 2]),
        ("compound 2 of 3 within 60", {"type": "compound", "require": 2, "within": 60,
                                       "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}]},
         [ev("a", "r", 0), ev("b", "r", 100), ev("a", "r", 101), ev("c", "r", 300)], [101]),
        ("compound all needs distinct children", {"type": "compound", "require": "all",
                                                   "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
         [ev("a", "r", 0), ev("a", "r", 1), ev("b", "r", 2)], [2]),
        ("sequence outside within does not fire", {"type": "sequence", "within": 10,
                                                    "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]},
         [ev("a", "r", 0), ev("b", "r", 30)], []),
        ("sequence of three in order", {"type": "sequence", "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}]},
         [ev("a", "r", 0), ev("c", "r", 1), ev("b", "r", 2), ev("c", "r", 3)], [3]),
    ],
)
def test_it_counts_and_matches(label, trigger, events, expected):
    firings = run(trigger, events)
    assert [round(f.at - T0.timestamp()) for f in firings if f.kind == "triggered"] == expected


def test_it_fires_proactive_rolling_windows_once_per_silence_and_resolves():
    trigger = {"expect": ["beat"], "posture": "Proactive", "threshold": 1, "within": 60}
    events = [ev("beat", "r", 10), ev("beat", "r", 70), ev("beat", "r", 400)]
    firings = run(trigger, events, until=600)
    # Windows [0,60) [60,120) hold a beat; [120,180) is silent: one firing for the whole silence
    # until the beat at 400 resolves it; [420, 480) is silent again.
    assert [(f.kind, round(f.at - T0.timestamp())) for f in firings] == [
        ("triggered", 180), ("resolved", 400), ("triggered", 480)
    ]


def test_it_resolves_a_proactive_after_trigger_when_the_expected_event_comes_late():
    trigger = {"after": ["start"], "expect": ["done"], "for_each": ["prefect.resource.id"], "posture": "Proactive",
               "within": 10}
    firings = run(trigger, [ev("start", "a", 0), ev("done", "a", 30), ev("done", "b", 31)], until=60)
    assert [(f.kind, round(f.at - T0.timestamp()), f.labels) for f in firings] == [
        ("triggered", 10, {"prefect.resource.id": "a"}),
        ("resolved", 30, {"prefect.resource.id": "a"}),
    ]


def test_it_does_not_fire_proactive_when_the_threshold_is_met():
    trigger = {"after": ["start"], "expect": ["beat"], "posture": "Proactive", "threshold": 2, "within": 10}
    assert run(trigger, [ev("start", "a", 0), ev("beat", "a", 2), ev("beat", "a", 3)], until=60) == []
    assert len(run(trigger, [ev("start", "a", 0), ev("beat", "a", 2)], until=60)) == 1


def test_it_does_not_count_the_opening_event_when_it_is_also_expected():
    trigger = {"after": ["beat"], "expect": ["beat"], "posture": "Proactive", "within": 10}
    firings = run(trigger, [ev("beat", "a", 0)], until=30)
    assert [round(f.at - T0.timestamp()) for f in firings] == [10]


def test_it_keeps_state_json_serialisable():
    import json

    trigger, _ = parse_trigger({"type": "sequence", "triggers": [{"expect": ["a"]}, {"expect": ["b"], "threshold": 2, "within": 5}]})
    state = new_state()
    on_event(trigger, state, ev("a", "r", 0))
    on_event(trigger, state, ev("b", "r", 1))
    assert json.loads(json.dumps(state)) == state
