"""Metric triggers: Prefect Cloud's MetricTrigger JSON and Eventfeed's count/rate metrics, their
values against hand-computed windows, the breach/firing_for state machine, live and replayed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations import engine, store
from eventfeed.automations.metrics import EVERY, step, value_of
from eventfeed.automations.models import Automation, Firing, TriggerState
from eventfeed.automations.replay import replay
from eventfeed.automations.describe import describe
from eventfeed.automations.triggers import TriggerError, parse_trigger
from eventfeed.events.filters import EventFilter
from tests.conftest import make_event, store as store_events

# What the SDK's MetricTrigger(...).model_dump(mode="json") sends (prefect#18747's test data).
SDK_METRIC = {"type": "metric", "posture": "Metric", "match": {"prefect.resource.id": "prefect.flow-run.*"},
              "metric": {"name": "duration", "threshold": 100.0, "operator": ">", "range": 300.0, "firing_for": 300.0}}
# A trigger as Prefect Cloud stores one (every event-trigger field with its default).
CLOUD_METRIC = {"after": [], "match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": [],
                "metric": {"name": "successes", "range": 3600.0, "operator": "<", "threshold": 0.99, "firing_for": 7200.0},
                "within": 0.0, "posture": "Metric", "for_each": [], "threshold": 1,
                "match_related": {"prefect.resource.id": ["prefect.tag.hourly-sla"], "prefect.resource.role": "tag"}}


def metric(**query):
    return parse_trigger({"type": "metric", "match": {"prefect.resource.id": "prefect.flow-run.*"},
                          "metric": {"operator": "<", "threshold": 1, "range": 3600, "firing_for": 0, **query}})[0]


def runs(*steps) -> list[tuple[float, str, str]]:
    """(seconds, run, state) → the (occurred, name, resource id) the metric reads."""
    return [(at, f"prefect.flow-run.{state}", f"prefect.flow-run.{run}") for at, run, state in steps]


def test_it_accepts_the_sdks_and_prefect_clouds_metric_trigger_json(client, auth):
    for trigger in (SDK_METRIC, CLOUD_METRIC):
        response = client.post("/api/automations/", {"name": "metric", "trigger": trigger}, content_type="application/json", **auth)
        assert response.status_code == 201, response.content
        saved = response.json()["trigger"]
        assert saved["type"] == "metric" and saved["posture"] == "Metric" and saved["metric"]["name"] == trigger["metric"]["name"]
    assert describe(parse_trigger(SDK_METRIC)[0]) == (
        "Fires when the mean flow-run duration over the last 5 minutes is above 100 seconds for 5 minutes; "
        "resolves when that has stopped for 5 minutes.")


@pytest.mark.parametrize("trigger,path", [
    ({**SDK_METRIC, "metric": {**SDK_METRIC["metric"], "name": "throughput"}}, "trigger.metric.name"),
    ({**SDK_METRIC, "metric": {**SDK_METRIC["metric"], "operator": "=="}}, "trigger.metric.operator"),
    ({**SDK_METRIC, "metric": {**SDK_METRIC["metric"], "name": "successes", "threshold": 95}}, "trigger.metric.threshold"),
    ({**SDK_METRIC, "metric": {**SDK_METRIC["metric"], "range": 10}}, "trigger.metric.range"),
    ({**SDK_METRIC, "metric": {**SDK_METRIC["metric"], "of": ["x"]}}, "trigger.metric.of"),
    ({**SDK_METRIC, "metric": None}, "trigger.metric"),
    ({**SDK_METRIC, "posture": "Reactive"}, "trigger.posture"),
    ({**SDK_METRIC, "for_each": ["prefect.resource.id"]}, "trigger.for_each"),
    ({"type": "compound", "require": "any", "triggers": [SDK_METRIC]}, "trigger.triggers[0]"),
])
def test_it_refuses_bad_metric_triggers_naming_the_path(trigger, path):
    with pytest.raises(TriggerError) as e:
        parse_trigger(trigger)
    assert path in [p for p, _ in e.value.problems]


def test_successes_is_the_share_of_runs_whose_latest_state_is_not_a_failure():
    t = metric(name="successes")
    events = runs((0, "a", "Pending"), (1, "a", "Running"), (9, "a", "Completed"),
                  (2, "b", "Pending"), (5, "b", "Failed"),
                  (3, "c", "Pending"), (4, "c", "Failed"), (6, "c", "AwaitingRetry"), (8, "c", "Completed"),  # a retry
                  (7, "d", "Running"), (8, "d", "Crashed"))  # no Pending in the range: not counted
    assert value_of(t, events) == pytest.approx(2 / 3)
    assert value_of(t, []) is None


def test_duration_and_lateness_are_means_of_the_state_spans():
    events = runs((0, "a", "Running"), (100, "a", "Completed"), (10, "b", "Running"), (40, "b", "Failed"),
                  (0, "c", "Late"), (30, "c", "Running"), (5, "d", "Late"), (65, "d", "Crashed"), (70, "e", "Running"))
    events.sort()
    assert value_of(metric(name="duration"), events) == pytest.approx((100 + 30) / 2)
    assert value_of(metric(name="lateness"), events) == pytest.approx((30 + 60) / 2)


def test_count_and_rate_are_of_any_events():
    count = parse_trigger({"type": "metric", "expect": ["acme.order.paid"],
                           "metric": {"name": "count", "operator": "<", "threshold": 10, "range": 3600, "firing_for": 0}})[0]
    assert count.covers("acme.order.paid", {"prefect.resource.id": "acme.order.1"}, [])
    assert not count.covers("acme.order.placed", {"prefect.resource.id": "acme.order.1"}, [])
    rate = metric(name="rate", threshold=0.05, operator=">", of=["prefect.flow-run.Completed", "prefect.flow-run.Failed"])
    rate = parse_trigger({**CLOUD_METRIC, "match_related": {}, "expect": ["prefect.flow-run.Failed"],
                          "metric": {"name": "rate", "of": ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
                                     "operator": ">", "threshold": 0.05, "range": 3600, "firing_for": 0}})[0]
    events = runs(*[(i, f"r{i}", "Completed") for i in range(19)], (20, "x", "Failed"))
    assert value_of(rate, events) == pytest.approx(1 / 20)
    assert not rate.breaches(value_of(rate, events))
    assert rate.breaches(value_of(rate, events + runs((21, "y", "Failed"))))
    assert "acme.order.paid events over the last 1 hour is below 10" in describe(count)


def test_it_fires_after_breaching_for_firing_for_and_resolves_after_recovering_as_long():
    t = metric(name="count", threshold=10, firing_for=300)
    state: dict = {}
    fired = {}
    for now in range(0, 1200, 10):
        value = 3.0 if 100 <= now < 700 else 50.0  # breaching (fewer than 10) from 100 s to 700 s
        for f in step(t, state, now, value):
            fired[f.kind] = now
    assert fired == {"triggered": 400, "resolved": 1000}


@pytest.fixture
def paid(db):
    return store.save_automation(store.parse_automation({"name": "fewer than 3 paid orders in 10 minutes", "trigger": {
        "type": "metric", "match": {"prefect.resource.id": "acme.order.*"}, "expect": ["acme.order.paid"],
        "metric": {"name": "count", "operator": "<", "threshold": 3, "range": 600, "firing_for": 0}}}))


def test_the_live_engine_measures_over_the_store_fires_and_resolves(paid):
    now = datetime.now(timezone.utc)
    store_events(make_event("acme.order.paid", "acme.order.1", occurred=now - timedelta(seconds=30)),
                 make_event("acme.order.paid", "acme.order.2", occurred=now - timedelta(seconds=20)),
                 make_event("acme.order.paid", "acme.order.3", occurred=now - timedelta(seconds=900)),  # out of range
                 make_event("acme.order.placed", "acme.order.4", occurred=now - timedelta(seconds=10)))  # not expected
    [firing] = engine.tick(now)
    assert firing.kind == "triggered" and firing.labels == {"metric": "count", "value": "2", "range": "600"}
    state = TriggerState.objects.get(automation=paid)
    assert state.next_due == now + timedelta(seconds=EVERY)
    assert engine.tick(now + timedelta(seconds=5)) == []  # not due yet
    store_events(make_event("acme.order.paid", "acme.order.5", occurred=now))
    [resolved] = engine.tick(now + timedelta(seconds=EVERY))
    assert resolved.kind == "resolved"
    assert Firing.objects.filter(automation=paid).count() == 2


def test_a_replay_of_a_metric_agrees_with_the_hand_computed_windows(paid):
    t0 = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
    # A paid order every 2 minutes for half an hour, a 20-minute lull, then again for 20 minutes.
    times = [m for m in range(0, 30, 2)] + [m for m in range(50, 70, 2)]
    store_events(*[make_event("acme.order.paid", f"acme.order.{m}", occurred=t0 + timedelta(minutes=m)) for m in times])
    trigger, _ = parse_trigger(Automation.objects.get(pk=paid.pk).trigger)
    end = t0 + timedelta(minutes=80)
    result = replay(trigger, EventFilter(since=t0, until=end), now=end)
    kinds = [(e["kind"], e["at"]) for e in result["timeline"]]
    # The window is (now − 10 min, now], evaluated every EVERY seconds from t0.
    def value(at_minutes: float) -> int:
        return sum(1 for m in times if at_minutes - 10 < m <= at_minutes)
    expected, firing = [], False
    for i in range(int(80 * 60 / EVERY) + 1):
        at = i * EVERY / 60
        breach = value(at) < 3
        if breach and not firing:
            expected.append(("triggered", at))
        if not breach and firing:
            expected.append(("resolved", at))
        firing = breach
    iso = lambda m: (t0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
    assert kinds == [(kind, iso(m)) for kind, m in expected]
    assert [k for k, _ in kinds] == ["triggered", "resolved", "triggered", "resolved", "triggered"]


def test_test_an_event_explains_that_a_metric_is_measured_on_the_clock(client, auth, paid):
    body = client.post(f"/api/automations/{paid.id}/test", {"event": "acme.order.paid", "resource": {"prefect.resource.id": "acme.order.9"}},
                       content_type="application/json", **auth).json()
    assert body["would_fire"] is False and "counts toward the count metric" in " ".join(body["reasons"])


def test_the_page_shows_the_metrics_last_value(owner_client, paid):
    engine.tick(datetime.now(timezone.utc))
    html = owner_client.get(f"/automations/{paid.id}/").content.decode()
    assert "Metric <code>count</code>: last value <strong>0</strong>" in html and "Firing" in html


def test_the_form_saves_and_previews_a_metric_trigger(owner_client, db):
    import json

    trigger = {"type": "metric", "expect": ["acme.order.paid"],
               "metric": {"name": "count", "operator": "<", "threshold": 10, "range": 3600, "firing_for": 0}}
    preview = owner_client.post("/automations/preview", {"trigger": trigger}, content_type="application/json").json()
    assert preview["errors"] == [] and preview["sentence"].startswith("Fires when the number of acme.order.paid events")
    assert preview["preview"]["fired"] == 1  # nothing was paid in the last 24 hours
    response = owner_client.post("/automations/new", {"name": "paid orders", "enabled": "on", "trigger": json.dumps(trigger),
                                                      "actions": "[]"})
    assert response.status_code == 302
    assert Automation.objects.get(name="paid orders").trigger["metric"]["name"] == "count"
