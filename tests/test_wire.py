"""One wire shape: an event sent with any UTC offset, through any door, reads the same through
every output: UTC, written with `Z`, big integers exact."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from eventfeed.asgi import application
from eventfeed.automations import actions, engine, store as automations
from eventfeed.automations.models import ActionRun, Firing
from eventfeed.events.consumers import FeedConsumer
from eventfeed.events.ingest import EVENTS_GROUP
from eventfeed.events.models import Event
from eventfeed.events.wire import iso, wire
from tests.conftest import make_event
from tests.test_consumer_events_out import subscriber
from tests.test_consumer_feed import ORIGIN, open_feed, rows, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

# West of UTC, an odd half hour east, and the far east (the date differs from UTC's).
OFFSETS = [timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=14))]
BIG = 2**70 + 1


def offset_events(now: datetime, door: str) -> list[dict]:
    """Events whose `occurred` carries an offset other than UTC, and their expected UTC text."""
    events = []
    for i, tz in enumerate(OFFSETS):
        moment = now - timedelta(minutes=i + 1)
        event = make_event(f"t.offset.{door}", f"t.{door}.{i}", payload={"big": BIG})
        event["occurred"] = moment.astimezone(tz).isoformat()
        assert not event["occurred"].endswith(("Z", "+00:00"))
        events.append(event)
    return events


def expected(event: dict) -> str:
    return iso(datetime.fromisoformat(event["occurred"]))


def post(client: Client, api_key: str, events: list[dict]) -> None:
    response = client.post("/api/events", json.dumps(events), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {api_key}")
    assert response.status_code == 200, response.content


async def send_in(api_key: str, events: list[dict]) -> None:
    communicator = WebsocketCommunicator(application, "/api/events/in", subprotocols=["prefect"])
    assert (await communicator.connect())[0]
    try:
        await communicator.send_json_to({"type": "auth", "token": api_key})
        assert await communicator.receive_json_from(timeout=3) == {"type": "auth_success"}
        for event in events:
            await communicator.send_to(text_data=json.dumps(event))
    finally:
        await communicator.disconnect()


async def test_it_writes_every_offset_in_utc_through_every_door_and_output(api_key, owner, now):
    http = offset_events(now, "http")
    ws = offset_events(now, "ws")
    sent = {e["id"]: expected(e) for e in http + ws}
    layer = get_channel_layer()
    automation_channel = await layer.new_channel()
    await layer.group_add(EVENTS_GROUP, automation_channel)

    client = Client()
    await database_sync_to_async(client.force_login)(owner)
    automation = await database_sync_to_async(automations.save_automation)(automations.parse_automation(
        {"name": "offsets", "trigger": {"expect": ["t.offset.*"]}, "actions": [{"type": "do-nothing"}]}))

    out = await subscriber(api_key, {"event": {"prefix": ["t.offset."]}}, backfill=False)
    feed = await open_feed(owner, ORIGIN)
    try:
        assert await subscribe(feed, "event=t.offset.*") == {"type": "subscribed"}
        await database_sync_to_async(post)(client, api_key, http)
        await send_in(api_key, ws)

        # /api/events/out, live.
        live = {}
        while len(live) < len(sent):
            frame = await out.receive_json_from(timeout=5)
            live[frame["event"]["id"]] = frame["event"]
        assert {i: e["occurred"] for i, e in live.items()} == sent
        assert all(e["payload"] == {"big": BIG} and e["received"].endswith("Z") for e in live.values())

        # The live rows of the browser feed, and the HTML they carry.
        pushed = {}
        while len(pushed) < len(sent):
            pushed.update({r["id"]: r for r in await rows(feed)})
        for event_id, row in pushed.items():
            assert row["occurred"] == sent[event_id]
            assert f'data-occurred="{sent[event_id]}"' in row["html"]
            assert f'datetime="{sent[event_id]}"' in row["html"]

        # What the automation evaluator receives from the channel layer, evaluated.
        published = []
        while len(published) < len(sent):
            message = await layer.receive(automation_channel)
            # Saving the automation emitted an event of its own.
            published += [e for e in message["events"] if e["id"] in sent]
        assert {e["id"]: e["occurred"] for e in published} == sent
        await database_sync_to_async(engine.evaluate)(published)
    finally:
        await out.disconnect()
        await feed.disconnect()
        await layer.group_discard(EVENTS_GROUP, automation_channel)

    # /api/events/out, backfill.
    backfill = await subscriber(api_key, {"event": {"prefix": ["t.offset."]}})
    try:
        frames = [await backfill.receive_json_from(timeout=5) for _ in sent]
        assert {f["event"]["id"]: f["event"]["occurred"] for f in frames} == sent
    finally:
        await backfill.disconnect()

    await database_sync_to_async(check_pages)(client, api_key, sent, automation)


def check_pages(client: Client, api_key: str, sent: dict[str, str], automation) -> None:
    # The read API.
    response = client.post("/api/events/filter", json.dumps({"filter": {"event": {"prefix": ["t.offset."]}}}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    events = response.json()["events"]
    assert {e["id"]: e["occurred"] for e in events} == sent
    assert all(e["payload"] == {"big": BIG} for e in events)

    # The feed page: its rows come from the row cache the live push filled.
    html = client.get("/events/", {"event": "t.offset.*"}).content.decode()
    for event_id, occurred in sent.items():
        assert re.search(rf'data-id="{event_id}" data-occurred="{re.escape(occurred)}"', html)

    # The event page: its times, its embedded JSON and its download.
    for event_id, occurred in sent.items():
        page = client.get(f"/events/{event_id}/").content.decode()
        assert f'datetime="{occurred}"' in page
        embedded = re.search(r'<script id="event-data" type="application/json">(.*?)</script>', page, re.S).group(1)
        assert json.loads(embedded)["occurred"] == occurred
        assert client.get(f"/events/{event_id}/", {"format": "json"}).json()["occurred"] == occurred

    # The automation: the triggering event in its firing event and in an action's context.
    firings = Firing.objects.filter(automation=automation)
    assert {f.triggering_event["id"]: f.triggering_event["occurred"] for f in firings} == sent
    for firing in firings:
        payload = Event.objects.get(pk=firing.event_id).payload
        assert payload["triggering_event"]["occurred"] == sent[str(firing.triggering_event_id)]
    for run in ActionRun.objects.filter(automation=automation):
        context = actions.template_context(run)
        assert context["event"]["occurred"] == sent[context["event"]["id"]]
        assert context["event"]["payload"] == {"big": BIG}


def test_it_shapes_stored_and_validated_events_alike(db, now):
    from tests.conftest import store

    raw = make_event(occurred=now.astimezone(OFFSETS[0]))
    [clean] = store(raw).stored
    assert wire(clean) == wire(Event.objects.get(pk=raw["id"]))
    assert wire(clean)["occurred"] == iso(now) and iso(now).endswith("Z")
