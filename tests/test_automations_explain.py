"""Why a trigger would or would not fire on an event: every kind of non-match named, without a
database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from eventfeed.automations.core import new_state, on_event, on_tick
from eventfeed.automations.explain import explain_event, state_view
from eventfeed.automations.triggers import parse_trigger
from eventfeed.events.filters import Matchable
from tests.conftest import make_event

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def ev(name: str, rid: str = "acme.order.1", at: float = 0, related=None, **labels) -> Matchable:
    return Matchable.from_wire(make_event(name, rid, occurred=T0 + timedelta(seconds=at), related=related, **labels))


def trig(**fields):
    return parse_trigger({"type": "event", **fields})[0]


def failed(result: dict) -> list[str]:
    return [c["path"] for t in result["triggers"] for c in t["checks"] if not c["ok"]]


def test_it_names_an_event_name_that_is_not_expected():
    result = explain_event(trig(expect=["acme.order.shipped"]), None, ev("acme.order.placed"))
    assert result["would_fire"] is False
    assert failed(result) == ["trigger.expect"]
    assert "acme.order.placed is not expected (acme.order.shipped)" in result["reasons"][0]


def test_it_names_the_label_that_does_not_match_and_its_value():
    t = trig(expect=["acme.order.shipped"], match={"prefect.resource.id": "acme.order.2*"})
    result = explain_event(t, None, ev("acme.order.shipped", "acme.order.1"))
    assert failed(result) == ['trigger.match["prefect.resource.id"]']
    assert "prefect.resource.id = acme.order.1 does not match acme.order.2*" in result["reasons"][0]


def test_it_says_a_missing_label_never_matches_even_negated():
    t = trig(match={"acme.tier": "!gold"})
    result = explain_event(t, None, ev("acme.order.shipped"))
    assert failed(result) == ['trigger.match["acme.tier"]']
    assert "has no acme.tier label" in result["reasons"][0]


def test_it_names_the_closest_related_resource_when_none_satisfies_match_related():
    t = trig(match_related={"prefect.resource.role": "flow", "prefect.resource.id": "prefect.flow.etl"})
    related = [{"prefect.resource.id": "prefect.flow.other", "prefect.resource.role": "flow"},
               {"prefect.resource.id": "prefect.tag.x", "prefect.resource.role": "tag"}]
    result = explain_event(t, None, ev("x.y", related=related))
    assert failed(result) == ["trigger.match_related"]
    reason = result["reasons"][0]
    assert "prefect.flow.other" in reason and "does not match prefect.flow.etl" in reason
    assert explain_event(t, None, ev("x.y"))["reasons"][0].endswith("the event has no related resources")


def test_it_says_an_expected_event_without_an_open_after_window_is_not_counted():
    t = trig(after=["acme.order.placed"], expect=["acme.order.shipped"], for_each=["prefect.resource.id"], within=60)
    result = explain_event(t, None, ev("acme.order.shipped"))
    assert result["would_fire"] is False and failed(result) == []
    assert "no `after` window is open for this key" in result["reasons"][0]
    state = new_state()
    on_event(t, state, ev("acme.order.placed", at=0))
    result = explain_event(t, state, ev("acme.order.shipped", at=5))
    assert result["would_fire"] is True
    assert result["triggers"][0]["before"]["key"] == {"prefect.resource.id": "acme.order.1"}


def test_it_shows_the_bucket_count_against_the_threshold_and_window():
    t = trig(expect=["acme.order.failed"], for_each=["prefect.resource.id"], threshold=3, within=60)
    state = new_state()
    on_event(t, state, ev("acme.order.failed", at=0))
    result = explain_event(t, state, ev("acme.order.failed", at=10))
    child = result["triggers"][0]
    assert result["would_fire"] is False
    assert child["after"]["count"] == 2 and child["after"]["threshold"] == 3 and child["after"]["within"] == 60
    assert "2 of 3 within 1 minute" in result["reasons"][0]
    # another key has its own bucket
    other = explain_event(t, state, ev("acme.order.failed", "acme.order.9", at=10))["triggers"][0]
    assert other["before"] is None and other["after"]["count"] == 1


def test_it_changes_nothing():
    t = trig(expect=["a.b"], threshold=2, within=60)
    state = new_state()
    on_event(t, state, ev("a.b", at=0))
    snapshot = repr(state)
    assert explain_event(t, state, ev("a.b", at=1))["would_fire"] is True
    assert repr(state) == snapshot


def test_it_says_a_for_each_label_is_missing():
    t = trig(expect=["a.b"], for_each=["acme.region"], threshold=2)
    result = explain_event(t, None, ev("a.b"))
    assert any("has no acme.region" in c["says"] for c in result["triggers"][0]["checks"])


def test_it_explains_proactive_windows_and_their_deadlines():
    t = trig(after=["job.started"], expect=["job.heartbeat"], for_each=["prefect.resource.id"], posture="Proactive", within=30)
    result = explain_event(t, None, ev("job.started", "job.1", at=0))
    assert "opens a window until 2026-11-21T12:00:30Z" in result["reasons"][0]
    state = new_state()
    on_event(t, state, ev("job.started", "job.1", at=0))
    view = state_view(t, state, T0.timestamp() + 10)
    assert view["buckets"][0]["due"] == "2026-11-21T12:00:30Z" and view["buckets"][0]["due_in"] == 20
    assert view["buckets"][0]["will_fire"] is True
    result = explain_event(t, state, ev("job.heartbeat", "job.1", at=5))
    assert "this window will not fire" in result["reasons"][0]


def test_it_shows_compound_and_sequence_children():
    seq = parse_trigger({"type": "sequence", "within": 60, "triggers": [
        {"expect": ["a.one"]}, {"expect": ["a.two"]}]})[0]
    state = new_state()
    on_event(seq, state, ev("a.one", at=0))
    result = explain_event(seq, state, ev("a.three", at=1))
    assert result["would_fire"] is False
    assert {c["path"] for c in result["composites"][0]["children"] if c["fired_at"]} == {"trigger.triggers[0]"}
    assert any("1 of 2 children have fired; it needs in order within 1 minute" in r for r in result["reasons"])
    assert explain_event(seq, state, ev("a.two", at=2))["would_fire"] is True


def test_it_refuses_the_automations_own_events():
    t = trig()
    result = explain_event(t, None, ev("prefect.automation.triggered", "prefect.automation.x"), own_resource_id="prefect.automation.x")
    assert result["would_fire"] is False and "own events" in result["reasons"][0]


def test_it_lists_open_incidents_and_the_next_deadline():
    t = trig(expect=["job.heartbeat"], posture="Proactive", within=30)
    state = new_state()
    on_tick(t, state, T0.timestamp())
    assert state_view(t, state, T0.timestamp())["next_due"] == "2026-11-21T12:00:30Z"
