"""Replay: stored events through an automation or a draft, as a dry-run timeline or for real."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations import store
from eventfeed.automations.models import ActionRun, Firing
from eventfeed.automations.replay import replay
from eventfeed.automations.triggers import parse_trigger
from eventfeed.events.filters import EventFilter
from tests.conftest import make_event, store as store_events

NOW = datetime.now(timezone.utc).replace(microsecond=0)
TRIGGER = {"match": {"prefect.resource.id": "acme.job.*"}, "expect": ["acme.job.failed"], "for_each": ["prefect.resource.id"],
           "threshold": 2, "within": 600}


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


@pytest.fixture
def automation(db):
    return store.save_automation(store.parse_automation({"name": "Twice", "trigger": TRIGGER, "actions": [{"type": "do-nothing"}]}))


@pytest.fixture
def history(db):
    return store_events(
        make_event("acme.job.failed", "acme.job.1", occurred=at(60)),
        make_event("acme.job.failed", "acme.job.2", occurred=at(58)),
        make_event("acme.job.failed", "acme.job.1", occurred=at(55)),   # job 1: 2 in 5 min → fires
        make_event("acme.job.failed", "acme.job.2", occurred=at(30)),   # job 2: 28 min apart → no
        make_event("acme.job.started", "acme.job.2", occurred=at(29)),
        make_event("acme.job.failed", "acme.job.2", occurred=at(25)),   # job 2: 5 min after → fires
    ).stored


def post(client, url, body, auth=None):
    return client.post(url, body, content_type="application/json", **(auth or {}))


def test_it_replays_a_time_range_as_a_timeline(history):
    trigger, _ = parse_trigger(TRIGGER)
    result = replay(trigger, EventFilter(since=at(120), until=NOW), now=NOW)
    assert (result["events_read"], result["matched"], result["fired"]) == (5, 5, 2)
    assert [(e["at"], e["labels"]) for e in result["timeline"]] == [
        (at(55).isoformat().replace("+00:00", "Z"), {"prefect.resource.id": "acme.job.1"}),
        (at(25).isoformat().replace("+00:00", "Z"), {"prefect.resource.id": "acme.job.2"}),
    ]
    assert result["timeline"][1]["event"]["id"] == str(history[5].id)


def test_it_replays_through_the_api_changing_nothing(client, auth, automation, history):
    body = {"filter": {"occurred": {"since": at(120).isoformat(), "until": at(40).isoformat()}}, "run_actions": False}
    response = post(client, f"/api/automations/{automation.id}/replay", body, auth)
    assert response.status_code == 200, response.content
    assert response.json()["fired"] == 1 and response.json()["timeline"][0]["kind"] == "triggered"
    assert not Firing.objects.exists()


def test_it_replays_for_real_marking_the_firings_replayed(client, auth, automation, history):
    body = {"filter": {"occurred": {"since": at(120).isoformat()}}, "run_actions": True}
    result = post(client, f"/api/automations/{automation.id}/replay", body, auth).json()
    firings = list(Firing.objects.filter(automation=automation))
    assert len(firings) == 2 and all(f.replayed for f in firings)
    assert sorted(result["firing_ids"]) == sorted(str(f.id) for f in firings)
    assert ActionRun.objects.filter(firing__in=firings).count() == 2


def test_it_replays_a_filter_narrower_than_the_trigger(client, auth, automation, history):
    body = {"filter": {"resource": {"id": ["acme.job.2"]}}}
    result = post(client, f"/api/automations/{automation.id}/replay", body, auth).json()
    assert result["fired"] == 1 and result["timeline"][0]["labels"] == {"prefect.resource.id": "acme.job.2"}


def test_it_replays_an_unsaved_draft(client, auth, history):
    body = {"trigger": {**TRIGGER, "threshold": 1}, "filter": {"occurred": {"since": at(120).isoformat()}}}
    response = post(client, "/api/automations/replay", body, auth)
    assert response.status_code == 200 and response.json()["fired"] == 5


@pytest.mark.parametrize("body,path", [
    ({"filter": {"occurred": {"since": "nope"}}}, "filter.occurred.since"),
    ({"filter": {"surprise": 1}}, "filter.surprise"),
    ({"run_actions": "yes"}, "run_actions"),
    ({"filters": {}}, "filters"),
    ([], ""),
])
def test_it_refuses_bad_input_naming_the_path(client, auth, automation, body, path):
    response = post(client, f"/api/automations/{automation.id}/replay", body, auth)
    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["errors"]]


def test_it_refuses_a_draft_without_a_valid_trigger_or_with_run_actions(client, auth, db):
    response = post(client, "/api/automations/replay", {"trigger": {"threshold": 0}}, auth)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "trigger.threshold"
    response = post(client, "/api/automations/replay", {"trigger": TRIGGER, "run_actions": True}, auth)
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "run_actions"


def test_it_refuses_anonymous_replays_and_unknown_automations(client, auth, automation):
    assert post(client, f"/api/automations/{automation.id}/replay", {}).status_code == 401
    assert post(client, "/api/automations/00000000-0000-0000-0000-000000000000/replay", {}, auth).status_code == 404


def test_it_refuses_to_run_actions_for_too_many_firings(client, auth, db, monkeypatch):
    from eventfeed.automations import replay as module

    monkeypatch.setattr(module, "MAX_REAL_FIRINGS", 1)
    a = store.save_automation(store.parse_automation({"name": "every", "trigger": {**TRIGGER, "threshold": 1}}))
    store_events(*[make_event("acme.job.failed", f"acme.job.{i}", occurred=at(i)) for i in range(3)])
    response = post(client, f"/api/automations/{a.id}/replay", {"run_actions": True}, auth)
    assert response.status_code == 422 and "narrow the filter" in response.json()["detail"]
    assert not Firing.objects.exists()


def test_the_page_replays_and_shows_the_timeline(owner_client, automation, history):
    response = owner_client.post(f"/automations/{automation.id}/replay", {"filter_json": '{"resource": {"id": ["acme.job.1"]}}'})
    html = response.content.decode()
    assert response.status_code == 200 and "it would have fired 1 time" in html
    assert f"/events/{history[2].id}/" in html
    bad = owner_client.post(f"/automations/{automation.id}/replay", {"filter_json": '{"resource": 3}'})
    assert bad.status_code == 400 and "filter.resource" in bad.content.decode()


def test_the_page_marks_replayed_firings(owner_client, automation, history):
    owner_client.post(f"/automations/{automation.id}/replay", {"run_actions": "on"})
    assert ">replayed<" in owner_client.get(f"/automations/{automation.id}/").content.decode()
