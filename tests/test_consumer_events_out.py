"""/api/events/out: Prefect's live subscriber protocol."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from eventfeed.asgi import application
from eventfeed.events import live
from tests.conftest import make_event, store

pytestmark = pytest.mark.django_db(transaction=True)


async def subscriber(api_key, filter_, backfill=True):
    communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "auth", "token": api_key})
    assert await communicator.receive_json_from(timeout=3) == {"type": "auth_success"}
    await communicator.send_json_to({"type": "filter", "filter": filter_, "backfill": backfill})
    if not backfill:
        await subscribed()
    return communicator


async def subscribed(count=1):
    """Prefect's protocol does not acknowledge the filter; wait until the hub has it."""
    for _ in range(100):
        if len(live.hub().subscribers) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the subscriber never subscribed")


async def names(communicator, n):
    out = []
    for _ in range(n):
        frame = await communicator.receive_json_from(timeout=3)
        assert frame["type"] == "event"
        out.append(frame["event"]["event"])
    return out


async def test_it_backfills_oldest_first_then_streams_live_events(api_key, now):
    await database_sync_to_async(store)(
        make_event("t.old.1", occurred=now - timedelta(minutes=3)), make_event("t.old.2", occurred=now - timedelta(minutes=2)),
        make_event("t.ancient", occurred=now - timedelta(days=2)),
    )
    communicator = await subscriber(api_key, {"event": {"prefix": ["t."]}})
    try:
        # By occurred within the backfill window, then what arrived within it with an older time.
        assert await names(communicator, 3) == ["t.old.1", "t.old.2", "t.ancient"]
        await database_sync_to_async(store)(make_event("t.live"))
        assert await names(communicator, 1) == ["t.live"]
    finally:
        await communicator.disconnect()


async def test_it_applies_the_related_filter_to_live_events(api_key):
    communicator = await subscriber(api_key, {"related": {"role": ["customer"]}}, backfill=False)
    try:
        customer = {"prefect.resource.id": "acme.customer.1", "prefect.resource.role": "customer"}
        await database_sync_to_async(store)(make_event("t.unrelated"), make_event("t.related", related=[customer]))
        assert await names(communicator, 1) == ["t.related"]
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_it_sends_prefects_received_event_shape(api_key):
    communicator = await subscriber(api_key, {}, backfill=False)
    try:
        sent = make_event("t.shape", payload={"k": [1, 2]})
        await database_sync_to_async(store)(sent)
        frame = await communicator.receive_json_from(timeout=3)
        event = frame["event"]
        assert event["id"] == sent["id"] and event["payload"] == {"k": [1, 2]} and "received" in event
    finally:
        await communicator.disconnect()


async def test_it_answers_a_bad_filter_with_an_error_frame(api_key):
    communicator = await subscriber(api_key, {"event": {"prefixes": ["x"]}})
    try:
        frame = await communicator.receive_json_from(timeout=3)
        assert frame["type"] == "error" and frame["errors"][0]["path"] == "filter.event.prefixes"
        await communicator.send_json_to({"type": "filter", "filter": {"event": {"prefix": ["t."]}}, "backfill": False})
        await subscribed()
        await database_sync_to_async(store)(make_event("t.after-fix"))
        assert await names(communicator, 1) == ["t.after-fix"]
    finally:
        await communicator.disconnect()


async def test_it_closes_with_1008_without_a_valid_key(db):
    communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"])
    await communicator.connect()
    await communicator.send_json_to({"type": "auth", "token": "evf_nope"})
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close" and output["code"] == 1008
    await communicator.disconnect()


async def test_it_expects_a_filter_message_after_auth(api_key):
    communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"])
    await communicator.connect()
    try:
        await communicator.send_json_to({"type": "auth", "token": api_key})
        await communicator.receive_json_from(timeout=3)
        await communicator.send_json_to({"type": "hello"})
        frame = await communicator.receive_json_from(timeout=3)
        assert frame["type"] == "error" and "filter" in frame["errors"][0]["rule"]
    finally:
        await communicator.disconnect()


async def test_it_does_not_repeat_a_backfilled_event_that_the_hub_delivers_late(api_key, now):
    from eventfeed.events.wire import wire
    from eventfeed.events.schema import validate_event

    raw = make_event("t.overlap", occurred=now - timedelta(minutes=1))
    await database_sync_to_async(store)(raw)
    communicator = await subscriber(api_key, {"event": {"prefix": ["t."]}})
    try:
        assert await names(communicator, 1) == ["t.overlap"]
        # The same event arriving through the live stream after the backfill ended, as when
        # the last backfill page read it while its publish waited in the hub's flush.
        event = validate_event(raw)[0]
        event.received = now
        live.hub().dispatch([wire(event)])
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_it_backfills_the_newest_event_per_resource_with_distinct_then_streams_live(api_key, now):
    await database_sync_to_async(store)(
        make_event("t.a.1", "r.a", occurred=now - timedelta(minutes=3)), make_event("t.a.2", "r.a", occurred=now - timedelta(minutes=2)),
        make_event("t.b.1", "r.b", occurred=now - timedelta(minutes=1)),
    )
    communicator = await subscriber(api_key, {"event": {"prefix": ["t."]}, "resource": {"distinct": True}})
    try:
        assert await names(communicator, 2) == ["t.a.2", "t.b.1"]
        await database_sync_to_async(store)(make_event("t.a.3", "r.a"))
        assert await names(communicator, 1) == ["t.a.3"]
    finally:
        await communicator.disconnect()


async def test_it_takes_the_key_from_the_authorization_header_as_prefects_cloud_subscriber_sends_it(api_key):
    communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"],
                                         headers=[(b"authorization", f"bearer {api_key}".encode())])
    await communicator.connect()
    try:
        # With PREFECT_API_KEY and no auth string, the plain subscriber's token is null.
        await communicator.send_json_to({"type": "auth", "token": None})
        assert await communicator.receive_json_from(timeout=3) == {"type": "auth_success"}
    finally:
        await communicator.disconnect()


async def test_it_closes_with_1008_and_says_how_when_no_key_comes_at_all(db):
    communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"])
    await communicator.connect()
    await communicator.send_json_to({"type": "auth", "token": None})
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close" and output["code"] == 1008
    assert "PREFECT_API_AUTH_STRING" in output["reason"]
    await communicator.disconnect()


async def test_it_closes_with_a_reason_when_the_hub_may_have_missed_events(api_key):
    # The Prefect SDK reconnects on a close and backfills from its last event; a socket left
    # open would stay silently deaf.
    communicator = await subscriber(api_key, {"event": {"prefix": ["t.missed."]}}, backfill=False)
    try:
        await live.hub().tell_missed()
        output = await communicator.receive_output(timeout=3)
        assert output["type"] == "websocket.close" and output["code"] == 1013
        assert "reconnect and backfill" in output["reason"]
        assert not live.hub().subscribers
    finally:
        await communicator.disconnect()


async def test_it_backfills_an_event_that_arrived_late_with_an_old_time(api_key, now):
    # The SDK reconnects asking for events since its last one; an event stamped an hour before
    # that, which arrived during the gap, is sent too.
    old = make_event("t.late.old", occurred=now - timedelta(hours=3))
    recent = make_event("t.late.recent", occurred=now - timedelta(minutes=1))
    await database_sync_to_async(store)(old, recent)
    since = (now - timedelta(minutes=30)).isoformat()
    communicator = await subscriber(api_key, {"event": {"prefix": ["t.late."]}, "occurred": {"since": since}})
    try:
        assert sorted(await names(communicator, 2)) == ["t.late.old", "t.late.recent"]
    finally:
        await communicator.disconnect()
