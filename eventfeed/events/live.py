"""The live push: one channel-layer subscription per process, fanned out to its sockets.

A consumer per socket listening to a group of all sockets costs the channel layer one message
per socket per event; here each process reads each published batch once, matches it once per
distinct filter, renders each event once, and sends one coalesced frame per socket at most every
FLUSH_INTERVAL. Sockets whose filters differ only in their time range share the work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from dataclasses import replace
from functools import cached_property
from typing import Protocol

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from eventfeed.layers import receive

from .filters import EventFilter, Matchable
from .ingest import EVENTS_GROUP
from .templatetags.eventfeed import row_html

log = logging.getLogger(__name__)

# How long the hub gathers events into one frame per socket: fewer, larger frames cost the
# server (and the browser) less per event; the first event after a quiet spell goes at once.
FLUSH_INTERVAL = settings.EVENTFEED_LIVE_FLUSH_MS / 1000
# How long a flush sends before it lets the loop run other work.
SEND_SLICE = 0.005
# channels-redis forgets group members after a day; re-join well before.
REJOIN_SECONDS = 3600


class Subscriber(Protocol):
    async def deliver(self, events: list["LiveEvent"], frames: "Frames") -> None: ...


class LiveEvent(Matchable):
    """A published event, parsed once per process, with its renderings cached."""

    def __init__(self, wire: dict):
        parsed = Matchable.from_wire(wire)
        super().__init__(
            id=parsed.id, occurred=parsed.occurred, event=parsed.event,
            resource=parsed.resource, related=parsed.related, payload=parsed.payload,
        )
        self.wire = wire

    @property
    def resource_id(self) -> str:
        return self.resource["prefect.resource.id"]

    @cached_property
    def row(self) -> dict:
        """What the browser feed needs: the same _row.html partial as the page."""
        return {
            "id": str(self.id),
            "occurred": self.wire["occurred"],
            "html": row_html(self),
        }

    @cached_property
    def prefect_frame(self) -> str:
        return json.dumps({"type": "event", "event": self.wire})


class Frames:
    """Frames built during one flush, shared by every socket that receives the same events:
    with a thousand feeds open, most of them get the very same text."""

    def __init__(self):
        self.cache: dict[tuple, str] = {}

    def rows(self, events: list[LiveEvent]) -> str:
        # The events live as long as the flush: their identities are keys enough.
        key = tuple(map(id, events))
        if key not in self.cache:
            self.cache[key] = json.dumps({"type": "rows", "rows": [e.row for e in events]})
        return self.cache[key]


class Hub:
    """This process's reader of the `events` group."""

    def __init__(self):
        self.subscribers: dict[Subscriber, EventFilter] = {}
        # Subscribers by their filter without its time range: each shape is matched once per
        # batch, however many sockets share it. Kept here so a batch does not rebuild it.
        self.shapes: dict[EventFilter, dict[Subscriber, EventFilter]] = defaultdict(dict)
        self.pending: dict[Subscriber, list[LiveEvent]] = defaultdict(list)
        self.channel: str | None = None
        self.reader: asyncio.Task | None = None
        self.rejoiner: asyncio.Task | None = None
        self.flush_handle: asyncio.TimerHandle | None = None
        self.last_flush = 0.0
        self.flushing = asyncio.Lock()

    async def subscribe(self, subscriber: Subscriber, f: EventFilter) -> None:
        self.unsubscribe(subscriber)
        self.subscribers[subscriber] = f
        self.shapes[shape_of(f)][subscriber] = f
        await self._ensure_reader()

    def unsubscribe(self, subscriber: Subscriber) -> None:
        f = self.subscribers.pop(subscriber, None)
        self.pending.pop(subscriber, None)
        if f is not None:
            members = self.shapes[shape_of(f)]
            members.pop(subscriber, None)
            if not members:
                del self.shapes[shape_of(f)]

    async def _ensure_reader(self) -> None:
        if self.reader is not None and not self.reader.done():
            return
        layer = get_channel_layer()
        # The default prefix: channels-redis reads all of a process's channels through one
        # receive loop keyed on it, and a second prefix would starve behind the first.
        self.channel = await layer.new_channel()
        await layer.group_add(EVENTS_GROUP, self.channel)
        self.reader = asyncio.ensure_future(self._read(layer))
        if self.rejoiner is not None:
            self.rejoiner.cancel()
        self.rejoiner = asyncio.ensure_future(self._rejoin(layer, self.channel))

    async def _rejoin(self, layer, channel: str) -> None:
        """Renew the group membership on a clock: channels-redis forgets it after a day, and a
        quiet day brings no message to renew it on."""
        while True:
            await asyncio.sleep(REJOIN_SECONDS)
            try:
                await layer.group_add(EVENTS_GROUP, channel)
            except Exception:
                log.exception("live: could not renew the events group membership")

    async def _read(self, layer) -> None:
        while True:
            try:
                message = await receive(layer, self.channel)
            except Exception:
                log.exception("live: channel layer receive failed; retrying")
                await asyncio.sleep(1)
                continue
            if message.get("type") == "events.stored":
                self.dispatch(message["events"])

    def dispatch(self, wires: list[dict]) -> None:
        """Match a published batch against every subscriber; queue what matches."""
        if not self.subscribers:
            return
        events = [LiveEvent(w) for w in wires]
        for shape, members in self.shapes.items():
            matched = [e for e in events if shape.matches(e)]
            if not matched:
                continue
            for subscriber, f in members.items():
                mine = matched
                if f.since is not None or f.until is not None:
                    mine = [e for e in matched if (f.since is None or e.occurred >= f.since) and (f.until is None or e.occurred <= f.until)]
                if mine:
                    self.pending[subscriber].extend(mine)
        if self.pending and self.flush_handle is None:
            loop = asyncio.get_event_loop()
            delay = max(0.0, self.last_flush + FLUSH_INTERVAL - time.monotonic())
            self.flush_handle = loop.call_later(delay, lambda: asyncio.ensure_future(self.flush()))

    async def flush(self) -> None:
        # A flush gives way to the loop while it sends: the next one waits for it, so that a
        # socket's frames keep their order, and meanwhile takes in every event that arrives.
        async with self.flushing:
            self.flush_handle = None
            await self._flush()

    async def _flush(self) -> None:
        self.last_flush = time.monotonic()
        pending, self.pending = self.pending, defaultdict(list)
        # Each event is rendered once, however many browsers receive it, in a worker thread so
        # that a burst does not stall the sockets.
        rows = {id(e): e for s, events in pending.items() if getattr(s, "wants_rows", False) for e in events}
        if rows:
            await sync_to_async(_render_all, thread_sensitive=False)(list(rows.values()))
        frames = Frames()
        # One socket after another rather than a task each: a send only hands its frame to the
        # server, which never makes it wait, and a thousand tasks cost more than the sends. The
        # loop is given back every SEND_SLICE, so that the ingest that stores (and publishes) the
        # next events does not wait for a thousand sends.
        slice_end = time.monotonic() + SEND_SLICE
        for subscriber, events in pending.items():
            if subscriber in self.subscribers:
                await self._deliver(subscriber, events, frames)
            if time.monotonic() > slice_end:
                await asyncio.sleep(0)
                slice_end = time.monotonic() + SEND_SLICE

    async def _deliver(self, subscriber: Subscriber, events: list[LiveEvent], frames: Frames) -> None:
        try:
            await subscriber.deliver(events, frames)
        except Exception:
            log.exception("live: delivery to %r failed", subscriber)


def shape_of(f: EventFilter) -> EventFilter:
    """The filter without its time range (and order, which live delivery does not use)."""
    return replace(f, since=None, until=None, order="DESC")


def _render_all(events: list[LiveEvent]) -> None:
    for e in events:
        e.row  # noqa: B018 (fills the cache)


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (one per server process; tests run several loops)."""
    loop = asyncio.get_running_loop()
    if loop not in _hubs:
        _hubs[loop] = Hub()
    return _hubs[loop]
