"""/ws/feed: the browser's live feed socket."""

from __future__ import annotations


import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from eventfeed.asgi import application
from eventfeed.events.consumers import FeedConsumer
from eventfeed.events import live
from tests.conftest import make_event, store

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


async def open_feed(user, headers=ORIGIN):
    communicator = WebsocketCommunicator(FeedConsumer.as_asgi(), "/ws/feed", headers=headers)
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def subscribe(communicator, query):
    await communicator.send_json_to({"type": "subscribe", "query": query})
    return await communicator.receive_json_from(timeout=3)


async def rows(communicator):
    message = await communicator.receive_json_from(timeout=3)
    assert message["type"] == "rows"
    return message["rows"]


async def test_it_pushes_matching_events_rendered_by_the_row_partial(owner):
    communicator = await open_feed(owner)
    try:
        assert await subscribe(communicator, "event=acme.order.*") == {"type": "subscribed"}
        await database_sync_to_async(store)(make_event("acme.order.shipped", "acme.order.7", **{"prefect.resource.name": "Order <7>"}))
        [row] = await rows(communicator)
        assert 'class="row"' in row["html"] and "Order &lt;7&gt;" in row["html"]
        assert row["id"] and row["occurred"]
    finally:
        await communicator.disconnect()


async def test_it_sends_only_events_that_match_the_filter(owner):
    communicator = await open_feed(owner)
    try:
        await subscribe(communicator, "event=acme.order.*&related=customer:acme.customer.vip-1")
        vip = {"prefect.resource.id": "acme.customer.vip-1", "prefect.resource.role": "customer"}
        await database_sync_to_async(store)(
            make_event("acme.order.created", related=[vip]),
            make_event("acme.order.created"),
            make_event("prefect.flow-run.Running", related=[vip]),
        )
        [row] = await rows(communicator)
        assert "acme.order.created" in row["html"]
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_it_coalesces_a_burst_into_few_frames(owner):
    communicator = await open_feed(owner)
    try:
        await subscribe(communicator, "")
        await database_sync_to_async(store)(*[make_event(f"t.burst.{i}") for i in range(30)])
        received, frames = [], 0
        while len(received) < 30:
            received += await rows(communicator)
            frames += 1
        assert len({r["id"] for r in received}) == 30
        # One stored batch arrives together: a frame per event would be 30.
        assert frames <= 3
    finally:
        await communicator.disconnect()


async def test_it_resubscribes_when_the_filter_changes(owner):
    communicator = await open_feed(owner)
    try:
        await subscribe(communicator, "event=a.*")
        await subscribe(communicator, "event=b.*")
        await database_sync_to_async(store)(make_event("a.one"), make_event("b.two"))
        [row] = await rows(communicator)
        assert "b.two" in row["html"]
    finally:
        await communicator.disconnect()


async def test_it_answers_a_bad_filter_with_an_error_frame_and_stays_open(owner):
    communicator = await open_feed(owner)
    try:
        reply = await subscribe(communicator, "since=yesterday")
        assert reply["type"] == "error" and "since" in reply["errors"]
        assert await subscribe(communicator, "range=1h") == {"type": "subscribed"}
    finally:
        await communicator.disconnect()


async def test_it_answers_a_malformed_message_with_an_error_frame(owner):
    communicator = await open_feed(owner)
    try:
        await communicator.send_to(text_data="hello")
        reply = await communicator.receive_json_from(timeout=3)
        assert reply["type"] == "error"
    finally:
        await communicator.disconnect()


async def test_it_closes_for_anonymous_users():
    communicator = await open_feed(AnonymousUser())
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close" and output["code"] == 4401
    await communicator.disconnect()


async def test_it_refuses_a_foreign_origin(owner):
    communicator = WebsocketCommunicator(application, "/ws/feed", headers=[(b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_it_accepts_the_sites_own_origin_through_the_router(owner):
    communicator = WebsocketCommunicator(application, "/ws/feed", headers=ORIGIN)
    connected, _ = await communicator.connect()
    assert connected
    # No session cookie: the router's auth middleware sees an anonymous user.
    output = await communicator.receive_output(timeout=3)
    assert output["code"] == 4401
    await communicator.disconnect()


async def test_it_matches_sockets_that_share_a_filter_once_and_forgets_them_on_disconnect(owner):
    from eventfeed.events import live

    first, second = await open_feed(owner), await open_feed(owner)
    try:
        await subscribe(first, "event=acme.*&range=1h")
        await subscribe(second, "event=acme.*&range=24h")
        # One shape: the two filters differ only in their time range.
        assert len(live.hub().shapes) == 1 and len(live.hub().subscribers) == 2
        await subscribe(second, "event=other.*")
        assert len(live.hub().shapes) == 2
    finally:
        await first.disconnect()
        await second.disconnect()
    assert live.hub().shapes == {} and live.hub().subscribers == {}


async def test_it_closes_so_the_page_catches_up_when_the_hub_may_have_missed_events(owner):
    communicator = await open_feed(owner)
    try:
        assert await subscribe(communicator, "event=acme.order.*") == {"type": "subscribed"}
        await live.hub().tell_missed()
        output = await communicator.receive_output(timeout=3)
        assert output["type"] == "websocket.close" and output["code"] == 1012 and output["reason"]
    finally:
        await communicator.disconnect()
