"""Live evaluation: events through the real ingest door and the channel layer, state in the
database, firings stored as events; concurrency on PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection

from eventfeed.automations import engine, service, store
from eventfeed.automations.models import CatchUpMark, Firing, TriggerState
from eventfeed.events.ingest import EVENTS_GROUP
from eventfeed.events.wire import wire
from eventfeed.events.models import Event
from tests.conftest import is_postgres, make_event, store as store_events


def automation(trigger: dict, **fields):
    return store.save_automation(store.parse_automation({"name": "test", "trigger": trigger, **fields}))


@pytest.fixture
def layer():
    """The channel layer, with a private channel of this test in the events group: with Redis a
    live test server's evaluator may be reading the shared "automations" channel too."""
    layer = get_channel_layer()
    layer.test_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(EVENTS_GROUP, layer.test_channel)
    yield layer
    async_to_sync(layer.group_discard)(EVENTS_GROUP, layer.test_channel)


def drain(layer) -> list[dict]:
    """Everything published to the events group since the fixture joined it."""

    async def take() -> list[dict]:
        events = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(layer.test_channel), timeout=0.5)
            except asyncio.TimeoutError:
                return events
            events += message["events"]

    return async_to_sync(take)()


def test_it_fires_for_an_event_posted_to_the_http_door(client, auth, layer, django_capture_on_commit_callbacks):
    a = automation({"match": {"prefect.resource.id": "acme.order.*"}, "expect": ["acme.order.shipped"]})
    body = [make_event("acme.order.shipped", "acme.order.7", payload={"total": 12}), make_event("acme.order.placed", "acme.order.7")]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/events", body, content_type="application/json", **auth)
    assert response.status_code == 200
    published = drain(layer)
    assert {e["event"] for e in published} >= {"acme.order.shipped", "acme.order.placed"}

    with django_capture_on_commit_callbacks(execute=True):
        firings = engine.evaluate(published)

    assert len(firings) == 1
    firing = Firing.objects.get()
    assert str(firing.triggering_event_id) == body[0]["id"]
    triggered = Event.objects.get(pk=firing.event_id)
    assert triggered.event == "prefect.automation.triggered"
    assert triggered.resource["prefect.resource.id"] == f"prefect.automation.{a.id}"
    assert triggered.related == [{"prefect.resource.id": f"prefect.event.{body[0]['id']}", "prefect.resource.role": "triggering-event"}]
    assert triggered.payload["triggering_event"]["payload"] == {"total": 12}
    assert triggered.payload["triggering_labels"] == {}
    a.refresh_from_db()
    assert a.last_fired is not None


def test_it_keeps_counts_in_the_database_across_batches(db, django_capture_on_commit_callbacks):
    a = automation({"expect": ["x"], "threshold": 3, "within": 60, "for_each": ["prefect.resource.id"]})
    t = datetime.now(timezone.utc)
    for i, rid in enumerate(["r1", "r2", "r1"]):
        result = store_events(make_event("x", rid, occurred=t + timedelta(seconds=i)))
        assert engine.evaluate([wire(e) for e in result.stored]) == []
    state = TriggerState.objects.get(automation=a).state
    assert len(state["b"]) == 2
    result = store_events(make_event("x", "r1", occurred=t + timedelta(seconds=5)))
    [firing] = engine.evaluate([wire(e) for e in result.stored])
    assert firing.labels == {"prefect.resource.id": "r1"}


def test_it_skips_events_no_trigger_looks_at_without_touching_state(db, django_assert_max_num_queries):
    automation({"expect": ["acme.order.shipped"], "threshold": 2})
    automation({"expect": ["prefect.flow-run.*"], "match": {"prefect.resource.id": "prefect.flow-run.1"}, "threshold": 2})
    engine.current_index()
    events = [wire(e) for e in store_events(make_event("acme.order.placed"), make_event("prefect.flow-run.Failed", "prefect.flow-run.2")).stored]
    # Only the "has any automation changed?" check: no per-event, per-automation round-trip.
    with django_assert_max_num_queries(1):
        assert engine.evaluate(events) == []


def test_it_ignores_disabled_automations_and_its_own_events(db):
    a = automation({"expect": ["prefect.automation.*"]})
    b = automation({"expect": ["x"]}, enabled=False)
    own = make_event("prefect.automation.triggered", f"prefect.automation.{a.id}")
    other = make_event("x", "r")
    assert engine.evaluate([wire(e) for e in store_events(own, other).stored]) == []
    assert not Firing.objects.filter(automation=b).exists()


def test_it_fires_a_proactive_trigger_on_a_tick_without_any_event(db):
    a = automation({"after": ["t.start"], "expect": ["t.heartbeat"], "for_each": ["prefect.resource.id"],
                    "posture": "Proactive", "within": 10})
    t = datetime.now(timezone.utc) - timedelta(seconds=30)
    engine.evaluate([wire(e) for e in store_events(make_event("t.start", "x", occurred=t), make_event("t.start", "y", occurred=t),
                                                  make_event("t.heartbeat", "y", occurred=t + timedelta(seconds=3))).stored])
    row = TriggerState.objects.get(automation=a)
    assert row.next_due is not None and row.next_due <= datetime.now(timezone.utc)
    [firing] = engine.tick()
    assert firing.labels == {"prefect.resource.id": "x"}
    assert engine.tick() == []
    assert TriggerState.objects.get(automation=a).next_due is None


def test_it_starts_a_rolling_proactive_window_when_the_automation_is_created(db):
    a = automation({"expect": ["beat"], "posture": "Proactive", "within": 10})
    now = datetime.now(timezone.utc)
    assert engine.tick(now) == []
    assert TriggerState.objects.get(automation=a).next_due == now + timedelta(seconds=10)
    [firing] = engine.tick(now + timedelta(seconds=11))
    assert firing.triggering_event is None


@pytest.mark.django_db(transaction=True)
def test_it_neither_loses_a_count_nor_fires_twice_under_concurrent_events():
    if not is_postgres():
        pytest.skip("row locks are a PostgreSQL matter (SQLite serialises writers)")
    a = automation({"expect": ["x"], "threshold": 5, "within": 0})
    stored = [wire(e) for e in store_events(*[make_event("x", f"r{i}") for i in range(40)]).stored]
    barrier = threading.Barrier(8)
    errors = []

    def worker(chunk):
        try:
            barrier.wait()
            for event in chunk:
                engine.evaluate([event])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(stored[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Firing.objects.filter(automation=a).count() == 8
    assert TriggerState.objects.get(automation=a).state["b"] == {}


@pytest.mark.django_db(transaction=True)
def test_it_fires_a_due_window_once_when_processes_tick_at_the_same_time():
    if not is_postgres():
        pytest.skip("SKIP LOCKED is a PostgreSQL matter")
    automations = [automation({"expect": ["beat"], "posture": "Proactive", "within": 10}) for _ in range(5)]
    now = datetime.now(timezone.utc)
    engine.tick(now)
    barrier = threading.Barrier(4)
    results = []

    def worker():
        barrier.wait()
        try:
            results.append(len(engine.tick(now + timedelta(seconds=11))))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 5
    assert Firing.objects.count() == len(automations)


def test_it_stores_a_resolved_event_and_runs_the_resolve_actions(db):
    a = automation({"after": ["start"], "expect": ["done"], "for_each": ["prefect.resource.id"], "posture": "Proactive",
                    "within": 10}, actions=[{"type": "do-nothing"}], actions_on_resolve=[{"type": "do-nothing"}, {"type": "do-nothing"}])
    t = datetime.now(timezone.utc) - timedelta(seconds=60)
    engine.evaluate([wire(e) for e in store_events(make_event("start", "job.1", occurred=t)).stored])
    [triggered] = engine.tick()
    [resolved] = engine.evaluate([wire(e) for e in store_events(make_event("done", "job.1")).stored])
    assert (triggered.kind, resolved.kind) == ("triggered", "resolved")
    assert Event.objects.get(pk=resolved.event_id).event == "prefect.automation.resolved"
    assert triggered.runs.count() == 1 and resolved.runs.count() == 2
    assert Event.objects.get(pk=triggered.event_id).payload["triggering_event"]["event"] == "start"
    assert a.firings.count() == 2


async def test_it_evaluates_events_published_to_the_events_group(transactional_db, monkeypatch):
    """The service's consumer: the named channel joins the group and evaluates what ingest publishes."""
    # Its own channel name: with Redis a live test server's evaluator reads "automations".
    monkeypatch.setattr(service, "CHANNEL", f"automations-test-{uuid.uuid4().hex}")
    from channels.db import database_sync_to_async

    layer = get_channel_layer()
    a = await database_sync_to_async(automation)({"expect": ["x"]})
    worker = service.Service()
    task = asyncio.ensure_future(worker._consumer())
    try:
        await asyncio.sleep(0.05)  # joined the group
        await database_sync_to_async(store_events)(make_event("x", "r"))
        for _ in range(100):
            if await database_sync_to_async(Firing.objects.filter(automation=a).count)():
                break
            await asyncio.sleep(0.05)
        assert await database_sync_to_async(Firing.objects.filter(automation=a).count)() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_it_evaluates_an_event_delivered_twice_only_once(db):
    """channels-redis can hand a shared channel's message to two processes."""
    a = automation({"expect": ["x"]})
    events = [wire(e) for e in store_events(make_event("x", "r1"), make_event("x", "r2")).stored]
    assert len(engine.evaluate(events)) == 2
    assert engine.evaluate(events) == []
    assert engine.evaluate(events[:1] + [wire(e) for e in store_events(make_event("x", "r3")).stored])[0].labels == {}
    assert Firing.objects.filter(automation=a).count() == 3
    # Claims are forgotten after an hour, once the catch-up from the store has passed them.
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    CatchUpMark.objects.update_or_create(pk=1, defaults={"received": later, "event_id": uuid.UUID(int=0), "updated": later})
    engine.forget_claims(later)
    assert len(engine.evaluate(events)) == 2


def test_it_meets_a_trigger_only_through_the_resource_ids_it_requires(db):
    a = automation({"expect": ["x"], "match_related": {"prefect.resource.id": ["d.1", "d.2"], "prefect.resource.role": "deployment"}})
    candidates = engine.current_index().candidates("x")
    assert not candidates.anywhere and set(candidates.by_related) == {"d.1", "d.2"}

    def related(rid, role="deployment"):
        return [{"prefect.resource.id": rid, "prefect.resource.role": role}]

    events = [make_event("x", "r", related=related("d.2")), make_event("x", "r", related=related("d.3")),
              make_event("x", "r", related=related("d.1", "flow")), make_event("y", "r", related=related("d.1"))]
    [firing] = engine.evaluate([wire(e) for e in store_events(*events).stored])
    assert str(firing.triggering_event_id) == events[0]["id"]
    assert Firing.objects.filter(automation=a).count() == 1


def test_it_evaluates_a_batch_in_the_same_few_queries_however_many_automations_it_touches(db, django_assert_max_num_queries):
    t = datetime.now(timezone.utc)
    counters = [automation({"expect": ["x"], "threshold": 1000, "for_each": ["prefect.resource.id"]}) for _ in range(12)]
    watchers = [automation({"posture": "Proactive", "after": ["x"], "expect": ["y"], "within": 60, "for_each": ["prefect.resource.id"]})
                for _ in range(12)]
    engine.current_index()
    events = [wire(e) for e in store_events(*[make_event("x", f"r{i}", occurred=t + timedelta(seconds=i)) for i in range(50)]).stored]
    # The index check, the claim, the states read and locked, the states written back, the
    # evaluation records written.
    with django_assert_max_num_queries(7):
        assert engine.evaluate(events) == []
    for a in counters + watchers:
        assert len(TriggerState.objects.get(automation=a).state["b"]) == 50
    assert all(TriggerState.objects.get(automation=a).next_due is not None for a in watchers)


def test_it_leaves_the_state_of_an_automation_that_fails_alone_and_counts_the_others(db, monkeypatch):
    broken = automation({"expect": ["x"], "threshold": 2})
    fine = automation({"expect": ["x"], "threshold": 2})
    real = engine.core.on_event

    def on_event(trigger, state, event):
        if trigger is engine.current_index().entries[broken.id].trigger:
            state["b"]["garbage"] = {}
            raise RuntimeError("a broken automation")
        return real(trigger, state, event)

    monkeypatch.setattr(engine.core, "on_event", on_event)
    events = [wire(e) for e in store_events(make_event("x", "r1"), make_event("x", "r2")).stored]
    [firing] = engine.evaluate(events)
    assert firing.automation_id == fine.id
    assert TriggerState.objects.get(automation=broken).state["b"] == {}
