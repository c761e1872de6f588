"""The live hub's flushes: what a socket receives, and in which order."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from channels.layers import get_channel_layer

from eventfeed.events import live
from eventfeed.events.filters import from_json
from eventfeed.events.ingest import wire
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
        hub.reader.cancel()


async def test_it_renews_its_group_membership_while_no_event_arrives(monkeypatch):
    # channels-redis forgets a group member after a day; a quiet day brings no message to
    # renew the membership on.
    monkeypatch.setattr(live, "REJOIN_SECONDS", 0.05)
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
        hub.reader.cancel()
        hub.rejoiner.cancel()
