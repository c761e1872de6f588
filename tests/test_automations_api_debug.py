"""POST /api/automations/{id}/test (and, below, /replay): answers that change nothing."""

from __future__ import annotations

import pytest

from eventfeed.automations import store
from eventfeed.automations.models import Firing, TriggerState
from eventfeed.events.models import Event
from tests.conftest import make_event

TRIGGER = {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"],
           "for_each": ["prefect.resource.id"], "threshold": 2, "within": 60}


@pytest.fixture
def automation(db):
    return store.save_automation(store.parse_automation({"name": "Twice failed", "trigger": TRIGGER}))


def post(client, url, body, auth=None):
    return client.post(url, body, content_type="application/json", **(auth or {}))


def test_it_says_why_an_event_would_not_fire(client, auth, automation):
    response = post(client, f"/api/automations/{automation.id}/test", make_event("prefect.flow-run.Completed", "prefect.flow-run.1"), auth)
    assert response.status_code == 200
    body = response.json()
    assert body["would_fire"] is False
    assert body["reasons"] == ["the event name prefect.flow-run.Completed is not expected (prefect.flow-run.Failed)"]


def test_it_counts_against_the_current_state_and_changes_nothing(client, auth, automation):
    before = TriggerState.objects.get(automation=automation).state
    event = {"event": "prefect.flow-run.Failed", "resource": {"prefect.resource.id": "prefect.flow-run.1"}}
    body = post(client, f"/api/automations/{automation.id}/test", event, auth).json()
    assert body["would_fire"] is False
    assert body["triggers"][0]["after"]["count"] == 1 and body["triggers"][0]["after"]["threshold"] == 2
    assert TriggerState.objects.get(automation=automation).state == before
    assert not Firing.objects.exists() and not Event.objects.filter(event="prefect.flow-run.Failed").exists()


def test_it_accepts_a_signed_in_session(owner_client, automation):
    event = make_event("prefect.flow-run.Failed", "prefect.flow-run.1")
    assert post(owner_client, f"/api/automations/{automation.id}/test", event).status_code == 200


def test_it_refuses_anonymous_and_unknown(client, auth, automation):
    assert post(client, f"/api/automations/{automation.id}/test", make_event()).status_code == 401
    assert post(client, "/api/automations/00000000-0000-0000-0000-000000000000/test", make_event(), auth).status_code == 404
    assert post(client, "/api/automations/nope/test", make_event(), auth).status_code == 404


@pytest.mark.parametrize("body,path", [
    ({"resource": {"prefect.resource.id": "x"}}, "event.event"),
    ({"event": "x", "resource": {}}, "event.resource"),
    ({"event": "x", "resource": {"prefect.resource.id": "x"}, "occurred": "yesterday"}, "event.occurred"),
    ([1], "event"),
])
def test_it_refuses_a_bad_event_naming_the_path(client, auth, automation, body, path):
    response = post(client, f"/api/automations/{automation.id}/test", body, auth)
    assert response.status_code == 422
    assert any(e["path"].startswith(path) for e in response.json()["errors"]), response.json()
