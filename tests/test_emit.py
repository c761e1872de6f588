"""emit(): the one way the application emits an event of its own."""

from __future__ import annotations

import asyncio
import threading

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from eventfeed.events.emit import InvalidEvent, emit, emit_all, internal_event
from eventfeed.events.ingest import EVENTS_GROUP
from eventfeed.events.models import Event, EventCount, EventResource
from eventfeed.layers import receive

RESOURCE = {"prefect.resource.id": "eventfeed.test.1", "prefect.resource.name": "test"}


def test_it_stores_an_event_through_the_ingest_path(db):
    related = [{"prefect.resource.id": "acme.order.1", "prefect.resource.role": "order"}]
    event = emit("eventfeed.test.done", RESOURCE, related, {"n": 2**70})
    stored = Event.objects.get(pk=event.id)
    assert (stored.event, stored.resource, stored.related, stored.payload) == ("eventfeed.test.done", RESOURCE, related, {"n": 2**70})
    # The same store as any producer's event: resource rows and counts.
    assert EventResource.objects.filter(event_id=event.id).count() == 2
    assert EventCount.objects.filter(event="eventfeed.test.done").exists()


def test_it_refuses_an_invalid_event_naming_the_path_and_stores_nothing(db):
    with pytest.raises(InvalidEvent) as e:
        emit("eventfeed.test.bad", {"prefect.resource.name": "no id"})
    assert e.value.problems[0].path == "resource[\"prefect.resource.id\"]"
    assert "is required" in str(e.value)
    assert not Event.objects.exists()


def test_it_leaves_no_event_when_the_change_it_reports_rolls_back(db):
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            emit("eventfeed.test.rolled-back", RESOURCE)
            raise RuntimeError("the change failed")
    assert not Event.objects.exists()


def test_it_emits_a_batch_all_or_nothing(db):
    events = [internal_event("eventfeed.test.batch", RESOURCE) for _ in range(3)]
    emit_all(events)
    assert Event.objects.filter(event="eventfeed.test.batch").count() == 3


@pytest.mark.django_db(transaction=True)
async def test_it_publishes_only_once_the_callers_transaction_commits():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(EVENTS_GROUP, channel)
    emitted, release = threading.Event(), threading.Event()

    def change():
        with transaction.atomic():
            event = emit("eventfeed.test.published", RESOURCE)
            emitted.set()
            release.wait(5)
        return event

    try:
        changing = asyncio.ensure_future(database_sync_to_async(change)())
        published = asyncio.ensure_future(receive(layer, channel))
        assert await asyncio.get_running_loop().run_in_executor(None, emitted.wait, 5)
        done, _ = await asyncio.wait([published], timeout=0.3)
        assert not done, "published before the transaction committed"
        release.set()
        event = await changing
        message = await asyncio.wait_for(published, 5)
        assert [e["id"] for e in message["events"]] == [str(event.id)]
    finally:
        release.set()
        await layer.group_discard(EVENTS_GROUP, channel)
