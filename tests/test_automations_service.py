"""The evaluator service with several processes sharing Redis: each event is evaluated once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from eventfeed.automations import service, store
from eventfeed.automations.models import Firing
from eventfeed.layers import ExactRedisChannelLayer
from tests.conftest import make_event, store as store_events

pytestmark = pytest.mark.redis


async def test_it_evaluates_each_event_once_with_two_evaluators_on_redis(transactional_db, monkeypatch):
    if not settings.REDIS_URL:
        pytest.skip("needs REDIS_URL (channels-redis)")
    # Its own channel name: a live test server's evaluator may be reading "automations".
    monkeypatch.setattr(service, "CHANNEL", f"automations-test-{uuid.uuid4().hex}")
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    # Two layer instances stand for two processes: each has its own connections.
    layers = [ExactRedisChannelLayer(**config), ExactRedisChannelLayer(**config)]
    a = await database_sync_to_async(store.save_automation)(
        store.parse_automation({"name": "each", "trigger": {"expect": ["x"]}}))
    workers = [asyncio.ensure_future(service.Service(layer=layer)._consumer()) for layer in layers]
    try:
        await asyncio.sleep(0.2)
        for i in range(10):
            await database_sync_to_async(store_events)(make_event("x", f"r{i}"), make_event("x", f"s{i}"))
        for _ in range(100):
            if await database_sync_to_async(Firing.objects.filter(automation=a).count)() >= 20:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a double evaluation would show up now
        firings = await database_sync_to_async(lambda: list(Firing.objects.filter(automation=a)))()
        assert len(firings) == 20
        assert len({f.triggering_event_id for f in firings}) == 20
    finally:
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for layer in layers:
            await layer.group_discard("events", service.CHANNEL)


async def test_it_evaluates_what_arrives_within_the_linger_as_one_batch_up_to_its_cap(monkeypatch):
    from channels.layers import InMemoryChannelLayer

    monkeypatch.setattr(service, "CHANNEL", f"automations-test-{uuid.uuid4().hex}")
    monkeypatch.setattr(service, "BATCH_EVENTS", 6)
    batches = []
    monkeypatch.setattr(service.engine, "evaluate", lambda events: batches.append([e["n"] for e in events]))
    layer = InMemoryChannelLayer()
    worker = asyncio.ensure_future(service.Service(layer=layer)._consumer())
    try:
        await asyncio.sleep(0.05)
        for m in range(5):
            await layer.group_send("events", {"type": "events.stored", "events": [{"n": 3 * m + i} for i in range(3)]})
        for _ in range(50):
            if sum(len(b) for b in batches) == 15:
                break
            await asyncio.sleep(0.05)
        assert batches == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14]]
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_it_catches_up_from_the_store_with_nothing_to_receive_from(transactional_db, monkeypatch):
    """A worker without a channel layer to read (consume=False) still evaluates what was stored
    while no evaluator read: the catch-up from the store, each event once."""
    from datetime import timedelta

    from eventfeed.automations import catchup

    monkeypatch.setattr(catchup, "LAG", timedelta(0))
    monkeypatch.setattr(service, "CATCH_UP_EVERY", 0.05)
    a = await database_sync_to_async(store.save_automation)(
        store.parse_automation({"name": "caught up", "trigger": {"expect": ["x"]}}))
    await database_sync_to_async(catchup.mark)()
    await database_sync_to_async(store_events)(*[make_event("x", f"r{i}") for i in range(5)])
    worker = asyncio.ensure_future(service.Service(consume=False)._catch_up())
    try:
        for _ in range(100):
            if await database_sync_to_async(Firing.objects.filter(automation=a).count)() >= 5:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # a second evaluation would show up now
        assert await database_sync_to_async(Firing.objects.filter(automation=a).count)() == 5
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
