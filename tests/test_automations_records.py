"""Evaluation records: what each automation did with each event that reached it, shown on the
automation page and the event page, kept for a configured time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from eventfeed.automations import engine, records, store
from eventfeed.automations.models import EvaluationRecord
from eventfeed.events.wire import wire
from tests.conftest import make_event, store as store_events


def automation(name: str, trigger: dict):
    return store.save_automation(store.parse_automation({"name": name, "trigger": trigger}))


@pytest.fixture
def counter(db):
    return automation("Three failures", {"match": {"prefect.resource.id": "acme.job.*", "acme.env": "prod"},
                                         "expect": ["acme.job.failed"], "for_each": ["prefect.resource.id"],
                                         "threshold": 3, "within": 600})


def evaluate(*events):
    stored = store_events(*events).stored
    engine.evaluate([wire(e) for e in stored])
    return stored


def test_it_records_the_count_of_the_bucket_each_event_reached(counter):
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}),
             make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}))
    rows = list(EvaluationRecord.objects.filter(automation=counter).order_by("occurred"))
    assert [r.outcome for r in rows] == ["counted", "counted"]
    assert rows[1].detail["n"] == 2 and rows[1].detail["th"] == 3 and rows[1].detail["key"] == {"prefect.resource.id": "acme.job.1"}
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}))
    assert EvaluationRecord.objects.filter(automation=counter).latest("at").outcome == "fired"


def test_it_records_a_miss_and_the_page_says_which_part_failed(owner_client, counter):
    [event] = evaluate(make_event("acme.job.failed", "acme.job.2", **{"acme.env": "staging"}))
    record = EvaluationRecord.objects.get(automation=counter)
    assert record.outcome == "missed" and record.detail is None
    html = owner_client.get(f"/automations/{counter.id}/").content.decode()
    assert "acme.env = staging does not match prod" in html and f"/events/{event.id}/" in html


def test_it_writes_nothing_for_events_that_never_reached_the_automation(counter):
    evaluate(make_event("acme.job.started", "acme.job.1", **{"acme.env": "prod"}))
    assert not EvaluationRecord.objects.exists()


def test_the_event_page_says_which_automations_it_reached_and_what_each_did(owner_client, counter):
    other = automation("Any job event", {"match": {"prefect.resource.id": "acme.job.*"}, "expect": ["acme.job.*"]})
    [event] = evaluate(make_event("acme.job.failed", "acme.job.3", **{"acme.env": "staging"}))
    html = owner_client.get(f"/events/{event.id}/").content.decode()
    assert f"/automations/{counter.id}/" in html and f"/automations/{other.id}/" in html
    assert "acme.env = staging does not match prod" in html and ">fired<" in html


def test_it_forgets_records_older_than_the_kept_hours(counter, settings):
    settings.EVENTFEED_EVALUATIONS_KEPT_HOURS = 2
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}))
    EvaluationRecord.objects.update(at=timezone.now() - timedelta(hours=3))
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}))
    assert records.forget(timezone.now()) == 1
    assert EvaluationRecord.objects.count() == 1


def test_it_records_nothing_when_turned_off(counter, settings):
    settings.EVENTFEED_EVALUATION_RECORDS = False
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}),
             make_event("acme.job.failed", "acme.job.9", **{"acme.env": "dev"}))
    assert not EvaluationRecord.objects.exists()


def test_deleting_an_automation_deletes_its_records(counter):
    evaluate(make_event("acme.job.failed", "acme.job.1", **{"acme.env": "prod"}))
    store.delete_automation(counter)
    assert not EvaluationRecord.objects.exists()
