"""The live hub's flushes: what a socket receives, and in which order."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from channels.layers import get_channel_layer

from eventfeed.events import live
from eventfeed.events.filter_parsers import from_json
from eventfeed.events.ingest import EVENTS_GROUP
from eventfeed.events.wire import wire
from eventfeed.events.schema import validate_event
from tests.conftest import make_event


def published(name: str) -> dict:
    event = validate_event(make_event(name))[0]
    event.received = datetime.now(timezone.utc)
    return wire(event)


class Recorder:
    """A subscriber whose first delivery takes longer than the flush interval."""

    wants_rows = False

    def __init__(self):
        self.calls = 0
        self.frames: list[list[str]] = []

    async def deliver(self, events, frames) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(live.FLUSH_INTERVAL * 4)
        self.frames.append([e.event for e in events])


async def test_it_keeps_a_sockets_frames_in_order_when_a_flush_outlasts_the_interval():
    hub = live.Hub()
    recorder = Recorder()
    await hub.subscribe(recorder, from_json({"event": {"prefix": ["t.order."]}}))
    try:
        hub.dispatch([published("t.order.first")])
        await asyncio.sleep(live.FLUSH_INTERVAL * 2)
        # The first flush is still sending: this event's flush waits for it.
        hub.dispatch([published("t.order.second")])
        await asyncio.sleep(live.FLUSH_INTERVAL * 6)
        assert recorder.frames == [["t.order.first"], ["t.order.second"]]
    finally:
        hub.unsubscribe(recorder)
        await hub.stop()


async def test_it_renews_its_group_membership_while_no_event_arrives(monkeypatch):
    # channels-redis forgets a group member after a day; a quiet day brings no message to
    # renew the membership on.
    monkeypatch.setattr(live, "CHECK_SECONDS", 0.05)
    hub = live.Hub()
    layer = get_channel_layer()
    joins = []
    real = layer.group_add

    async def group_add(group, channel):
        joins.append(channel)
        await real(group, channel)

    monkeypatch.setattr(layer, "group_add", group_add)
    await hub.subscribe(Recorder(), from_json({"event": {"prefix": ["t.quiet."]}}))
    try:
        await asyncio.sleep(0.3)
        assert len(joins) >= 3 and set(joins) == {hub.channel}
    finally:
        await hub.stop()


async def members_of_this_process(layer) -> list[str]:
    """The events group's members that belong to this layer (the test Redis is shared by other
    tests' layers)."""
    if hasattr(layer, "_group_key"):
        connection = layer.connection(layer.consistent_hash(EVENTS_GROUP))
        members = await connection.zrange(layer._group_key(EVENTS_GROUP), 0, -1)
        return [m.decode() for m in members if m.decode().startswith(f"specific.{layer.client_prefix}!")]
    return list(layer.groups.get(EVENTS_GROUP, {}))


async def test_it_joins_the_group_once_when_many_subscribe_at_once():
    # Six browsers reconnecting after a deploy used to add six channels to the group, and
    # channels-redis then kept a copy of every event for each of them, never read.
    hub = live.Hub()
    layer = get_channel_layer()
    recorders = [Recorder() for _ in range(30)]
    try:
        await asyncio.gather(*(hub.subscribe(r, from_json({"event": {"prefix": [f"t.many.{i}."]}})) for i, r in enumerate(recorders)))
        assert await members_of_this_process(layer) == [hub.channel]
    finally:
        await hub.stop()


class Forgotten(Recorder):
    def __init__(self):
        super().__init__()
        self.told = 0

    async def missed(self) -> None:
        self.told += 1


async def test_it_joins_again_within_seconds_when_the_layer_forgets_it_and_tells_its_subscribers(monkeypatch):
    # What a Redis restarted without its data (or failed over) does: the membership is gone,
    # and so are the events published meanwhile.
    monkeypatch.setattr(live, "CHECK_SECONDS", 0.1)
    hub = live.Hub()
    layer = get_channel_layer()
    subscriber = Forgotten()
    await hub.subscribe(subscriber, from_json({"event": {"prefix": ["t.forgotten."]}}))
    try:
        await layer.group_discard(EVENTS_GROUP, hub.channel)
        await asyncio.sleep(0.5)
        assert await members_of_this_process(layer) == [hub.channel]
        assert subscriber.told == 1
        await layer.group_send(EVENTS_GROUP, {"type": "events.stored", "events": [published("t.forgotten.after")]})
        for _ in range(50):
            if subscriber.frames:
                break
            await asyncio.sleep(0.05)
        assert subscriber.frames == [["t.forgotten.after"]]
    finally:
        await hub.stop()
