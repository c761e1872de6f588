"""The automation page's debugging parts: live state, "Test an event"."""

from __future__ import annotations

import pytest

from eventfeed.automations import engine, store
from eventfeed.events.wire import wire
from tests.conftest import make_event, store as store_events

TRIGGER = {"match": {"prefect.resource.id": "job.*"}, "after": ["job.started"], "expect": ["job.heartbeat"],
           "for_each": ["prefect.resource.id"], "posture": "Proactive", "within": 300}


@pytest.fixture
def automation(db):
    return store.save_automation(store.parse_automation({"name": "Stuck jobs", "trigger": TRIGGER}))


def test_it_shows_open_windows_and_their_deadlines(owner_client, automation):
    assert "No open buckets" in owner_client.get(f"/automations/{automation.id}/").content.decode()
    stored = store_events(make_event("job.started", "job.7")).stored
    engine.evaluate([wire(e) for e in stored])
    html = owner_client.get(f"/automations/{automation.id}/").content.decode()
    assert "prefect.resource.id=job.7" in html and "0 of 1" in html and "fires then" in html


def test_it_tests_a_stored_event_by_id(owner_client, automation):
    stored = store_events(make_event("job.heartbeat", "job.7")).stored
    response = owner_client.post(f"/automations/{automation.id}/test", {"event_id": str(stored[0].id)})
    html = response.content.decode()
    assert response.status_code == 200 and "It would not fire." in html
    assert "no window is open for this key" in html


def test_it_tests_pasted_json(owner_client, automation):
    response = owner_client.post(f"/automations/{automation.id}/test",
                                 {"event_json": '{"event": "job.started", "resource": {"prefect.resource.id": "job.1"}}'})
    assert "opens a window until" in response.content.decode()


@pytest.mark.parametrize("data,message", [
    ({}, "Give a stored event"),
    ({"event_id": "00000000-0000-0000-0000-000000000000"}, "No stored event has this id."),
    ({"event_json": "{"}, "This is not valid JSON"),
    ({"event_json": '{"event": "x"}'}, "event.resource: is required"),
])
def test_it_shows_bad_input_as_form_errors(owner_client, automation, data, message):
    response = owner_client.post(f"/automations/{automation.id}/test", data)
    assert response.status_code == 400 and message in response.content.decode()


def test_it_refuses_anonymous_tests(client, automation):
    response = client.post(f"/automations/{automation.id}/test", {"event_json": "{}"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
