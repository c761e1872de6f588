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
# How often the hub checks that it is still a member of the events group, and renews it. A
# Redis that restarted without its data, or failed over, forgets every member: live delivery
# then stops until the next check, so this is how many seconds such a loss can cost.
CHECK_SECONDS = settings.EVENTFEED_LIVE_CHECK_SECONDS
# How long a new subscriber waits for the hub's first join before it is subscribed anyway (it
# is then told when the channel layer comes back).
JOIN_WAIT_SECONDS = 5
LOST_REASON = "Live stream interrupted (the channel layer lost messages): reconnect and backfill"


class Subscriber(Protocol):
    async def deliver(self, events: list["LiveEvent"], frames: "Frames") -> None: ...

    async def missed(self) -> None:
        """Events may have been published that this subscriber never received: catch up from
        the store, or close so that the client reconnects and backfills."""


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
            # The page's arrival cursor for its catch-up after a reconnect.
            "received": self.wire.get("received"),
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
        self.watcher: asyncio.Task | None = None
        self.joined = asyncio.Event()
        # Set when a receive failed: events published meanwhile may be lost.
        self.receive_failed = False
        self.flush_handle: asyncio.TimerHandle | None = None
        self.last_flush = 0.0
        self.flushing = asyncio.Lock()

    async def subscribe(self, subscriber: Subscriber, f: EventFilter) -> None:
        self.unsubscribe(subscriber)
        self.subscribers[subscriber] = f
        self.shapes[shape_of(f)][subscriber] = f
        self._ensure_reader()
        if not self.joined.is_set():
            # Subscribed means "receives what is published from now on" (/out backfills up to
            # this point), so wait for the membership; a channel layer that is away is
            # checked again on the clock, and the subscriber told when it comes back.
            try:
                await asyncio.wait_for(asyncio.shield(self.joined.wait()), JOIN_WAIT_SECONDS)
            except asyncio.TimeoutError:
                log.warning("live: the channel layer is not answering; subscribed without a membership yet")

    def unsubscribe(self, subscriber: Subscriber) -> None:
        f = self.subscribers.pop(subscriber, None)
        self.pending.pop(subscriber, None)
        if f is not None:
            members = self.shapes[shape_of(f)]
            members.pop(subscriber, None)
            if not members:
                del self.shapes[shape_of(f)]

    def _ensure_reader(self) -> None:
        # No await between the check and the start: however many subscribers arrive at once,
        # the process gets one channel and one group membership.
        if self.reader is not None and not self.reader.done():
            return
        layer = get_channel_layer()
        self.joined.clear()
        self.reader = asyncio.ensure_future(self._start(layer))

    async def _start(self, layer) -> None:
        # The default prefix: channels-redis reads all of a process's channels through one
        # receive loop keyed on it, and a second prefix would starve behind the first.
        self.channel = await layer.new_channel()
        self.watcher = asyncio.ensure_future(self._watch(layer, self.channel))
        try:
            await self._read(layer)
        finally:
            self.watcher.cancel()

    async def stop(self) -> None:
        """Stop reading and watching, and wait until both have: a task left cancelling when its
        event loop closes (a test's, or a server's at shutdown) keeps the close waiting."""
        tasks = [t for t in (self.reader, self.watcher) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, layer, channel: str) -> None:
        """Join the events group, then check the membership on a clock and renew it. A lost
        membership (Redis flushed or restarted without its data) or a failed receive (Redis
        away) means events may have been missed: every subscriber is told."""
        trouble = False
        while True:
            try:
                present = await is_member(layer, EVENTS_GROUP, channel)
                await layer.group_add(EVENTS_GROUP, channel)
                if self.joined.is_set() and not present:
                    log.warning("live: the events group had forgotten this process; joined again")
                    trouble = True
                if self.receive_failed:
                    self.receive_failed, trouble = False, True
                self.joined.set()
                if trouble:
                    trouble = False
                    await self.tell_missed()
            except Exception as e:
                log.warning("live: could not check the events group membership: %s", e)
                trouble = True
            await asyncio.sleep(CHECK_SECONDS)

    async def tell_missed(self) -> None:
        """Every subscriber may have missed events: browsers catch up from the store, /out
        subscribers are closed with a reason so that they reconnect and backfill."""
        subscribers = list(self.subscribers)
        log.warning("live: telling %d subscribers that events may have been missed", len(subscribers))
        for subscriber in subscribers:
            try:
                missed = getattr(subscriber, "missed", None)
                if missed is not None:
                    await missed()
            except Exception:
                log.exception("live: telling %r failed", subscriber)

    async def _read(self, layer) -> None:
        while True:
            try:
                message = await receive(layer, self.channel)
            except Exception as e:
                if not self.receive_failed:
                    log.warning("live: channel layer receive failed (%s); retrying", e)
                self.receive_failed = True
                await asyncio.sleep(1)
                continue
            kind = message.get("type")
            if kind == "events.stored":
                self.dispatch(message["events"])
            elif kind == "events.resync":
                asyncio.ensure_future(self.tell_missed())

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


def announce_start(loop: asyncio.AbstractEventLoop) -> None:
    """Called when a server process starts. It may replace one killed between committing events
    and publishing them (publishing follows the commit): those events are stored but reached no
    socket. Every hub of the other processes tells its subscribers to catch up from the store."""

    async def send() -> None:
        try:
            await get_channel_layer().group_send(EVENTS_GROUP, {"type": "events.resync"})
        except Exception as e:
            log.warning("live: could not announce this process's start: %s", e)

    loop.create_task(send())


async def is_member(layer, group: str, channel: str) -> bool:
    """Whether the channel layer still has `channel` in `group`. channels-redis keeps a group as
    a sorted set of its channels; the in-process layer as a dict."""
    group_key = getattr(layer, "_group_key", None)
    if group_key is None:
        return channel in getattr(layer, "groups", {}).get(group, {})
    connection = layer.connection(layer.consistent_hash(group))
    return await connection.zscore(group_key(group), channel) is not None


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
