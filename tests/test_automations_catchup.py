"""The catch-up from the store (automations/catchup.py): what the live path never evaluated is
evaluated once, what it did is not evaluated again, and the mark never passes a writer still open."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, transaction

from eventfeed.automations import catchup, engine, store
from eventfeed.automations.models import CatchUpMark, EvaluationRecord, Firing
from eventfeed.events.ingest import ingest
from eventfeed.events.schema import validate_event
from eventfeed.events.wire import wire
from tests.conftest import is_postgres, make_event, store as store_events


@pytest.fixture(autouse=True)
def no_lag(monkeypatch):
    # The sweep stays LAG behind the clock; the tests look at once.
    monkeypatch.setattr(catchup, "LAG", timedelta(0))


def automation(trigger: dict, **fields):
    return store.save_automation(store.parse_automation({"name": "test", "trigger": trigger, **fields}))


def sweep_all() -> list[Firing]:
    fired = []
    while True:
        read, these = catchup.sweep()
        fired += these
        if read < catchup.BATCH:
            return fired


def test_it_evaluates_stored_events_no_evaluator_received(db):
    a = automation({"expect": ["x"]})
    store_events(*[make_event("x", f"r{i}") for i in range(5)])  # published; nobody read them
    assert len(sweep_all()) == 5
    assert sweep_all() == []
    assert Firing.objects.filter(automation=a).count() == 5


def test_it_does_not_evaluate_again_what_the_live_path_evaluated(db):
    a = automation({"expect": ["x"]})
    events = [wire(e) for e in store_events(make_event("x", "r1"), make_event("x", "r2")).stored]
    assert len(engine.evaluate(events)) == 2
    store_events(make_event("x", "r3"))  # missed by the live path
    assert [f.triggering_event["resource"]["prefect.resource.id"] for f in sweep_all()] == ["r3"]
    assert Firing.objects.filter(automation=a).count() == 3


def test_it_reads_in_batches_and_moves_the_mark_past_each(db, monkeypatch):
    monkeypatch.setattr(catchup, "BATCH", 3)
    automation({"expect": ["x"]})
    stored = store_events(*[make_event("x", f"r{i}") for i in range(7)]).stored
    read, fired = catchup.sweep()
    assert (read, len(fired)) == (3, 3)
    last = sorted(stored, key=lambda e: (e.received, e.id))[2]
    assert (catchup.mark().received, catchup.mark().event_id) == (last.received, last.id)
    assert len(sweep_all()) == 4


def test_it_does_not_hand_an_automation_events_that_arrived_before_it_was_changed(db):
    store_events(make_event("x", "r1"))
    a = automation({"expect": ["x"]})
    assert sweep_all() == []
    store.save_automation({"trigger": store.parse_automation({"name": "t", "trigger": {"expect": ["y"]}})["trigger"]}, a)
    store_events(make_event("y", "r2"))
    assert len(sweep_all()) == 1


def test_it_moves_the_mark_when_no_automation_is_enabled(db):
    store_events(make_event("x", "r1"))
    before = catchup.mark().received
    assert catchup.pending()
    assert catchup.sweep() == (0, [])
    assert catchup.mark().received > before
    assert not catchup.pending()
    # An automation created now is not handed what arrived before the mark.
    automation({"expect": ["x"]})
    assert sweep_all() == []


def test_it_reads_only_the_names_the_triggers_look_at(db):
    automation({"expect": ["x.*"]})
    automation({"expect": ["y"]})
    store_events(make_event("x.a", "r1"), make_event("z", "r2"), make_event("y", "r3"))
    read, fired = catchup.sweep()
    assert (read, len(fired)) == (2, 2)


def test_it_records_a_miss_once_when_both_paths_see_the_event(db, settings):
    settings.EVENTFEED_EVALUATION_RECORDS = True
    a = automation({"expect": ["x"], "match": {"acme.env": "prod"}})
    events = [wire(e) for e in store_events(make_event("x", "r1", **{"acme.env": "staging"})).stored]
    engine.evaluate(events)
    sweep_all()
    engine.evaluate(events)
    assert EvaluationRecord.objects.filter(automation=a, outcome=EvaluationRecord.MISSED).count() == 1


def test_it_keeps_the_claims_the_catch_up_may_still_meet(db):
    automation({"expect": ["x"]})
    events = [wire(e) for e in store_events(make_event("x", "r1")).stored]
    engine.evaluate(events)
    engine.forget_claims(datetime.now(timezone.utc) + timedelta(hours=2))
    # The mark has not passed the event: forgetting its claim would evaluate it twice.
    assert sweep_all() == []


def test_it_starts_from_the_present_when_the_mark_is_missing(db):
    automation({"expect": ["x"]})
    store_events(make_event("x", "r1"))
    CatchUpMark.objects.all().delete()
    assert sweep_all() == []


@pytest.mark.skipif(not is_postgres(), reason="concurrent writers: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_it_never_passes_a_writer_still_open():
    """An ingest that took its arrival time, then was slow to commit, is not skipped. (Counted
    in the firings, not in what this sweep returns: an evaluator another test left running in
    this process may take the events first.)"""
    a = automation({"expect": ["x", "y"]})
    catchup.mark()  # as the migration does: a database emptied by the test has none
    stamped, release, done = threading.Event(), threading.Event(), threading.Event()
    slow = []

    def slow_writer():
        try:
            with transaction.atomic():
                slow.extend(ingest([validate_event(make_event("x", "slow"))[0]]).stored)
                stamped.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    threading.Thread(target=slow_writer, daemon=True).start()
    assert stamped.wait(10)
    # Arrives later, commits first (another name: the same name's per-minute count row would
    # wait for the slow writer's lock).
    store_events(make_event("y", "fast"))
    sweep_all()
    assert catchup.mark().received < slow[0].received
    release.set()
    assert done.wait(10)
    sweep_all()
    fired = Firing.objects.filter(automation=a).values_list("triggering_event__resource__prefect.resource.id", flat=True)
    assert sorted(fired) == ["fast", "slow"]
