"""Websocket doors: `/api/events/in` (Prefect's ingest protocol), `/api/events/out` (Prefect's
subscriber protocol) and `/ws/feed` (the browser's live feed)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from functools import cached_property

from channels.db import database_sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.sessions import InstanceSessionWrapper
from django.conf import settings
from django.db import DatabaseError
from django.http import QueryDict
from django.utils import timezone

from eventfeed import throttle

from . import dbfaults, jsoncodec, live, queries
from .auth import check_key, key_from_header
from .filter_parsers import from_json
from .filters import FilterError
from .filtersets import FeedFilterSet
from .ingest import ingest
from .models import IngestProblem
from .schema import Problem, decode_clean, validate_event
from .wire import wire

log = logging.getLogger(__name__)

# Frames are stored in batches of up to this many, in arrival order.
BATCH = 500
# With this many frames read but not stored, the consumer stops reading until they are stored;
# Daphne's queue then fills and eventfeed.serving pauses the socket, slowing the sender.
HIGH_WATER = 2_000
FRAME_KEEP = 10_000
# While the database is unavailable a batch is tried again after 0.5, 1, 2, 2… seconds.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 2.0
# How long frames of a sender that has gone are kept trying for.
GIVE_UP_SECONDS = 60


def store_frames(frames: list[tuple[int, str]], api_key) -> list[dict]:
    """Validate and store frames (sequence number, text); return one error frame per bad one."""
    clean, bad = [], []
    for seq, text in frames:
        size = len(text.encode())
        # A valid frame is parsed and checked in one pass; any other the long way, for its
        # problems' paths and rules.
        fast = decode_clean(text, one=True, size=size)
        if fast is not None:
            clean += fast
            continue
        try:
            raw = jsoncodec.loads(text)
        except json.JSONDecodeError as e:
            problems = [Problem(seq, "", f"not valid JSON: {e.msg} at column {e.colno}")]
        else:
            event, problems = validate_event(raw, seq, size=size)
            if event is not None:
                clean.append(event)
                continue
        bad.append((seq, text, problems))
    if clean:
        ingest(clean)
    if bad:
        IngestProblem.objects.bulk_create(
            [
                IngestProblem(door="websocket", api_key=api_key, errors=[p.as_dict() for p in problems], frame=text[:FRAME_KEEP])
                for _, text, problems in bad
            ]
        )
    return [
        {"type": "error", "frame": seq, "errors": [{"path": p.path, "rule": p.rule} for p in problems]}
        for seq, _, problems in bad
    ]


def store_frames_one_by_one(frames: list[tuple[int, str]], api_key) -> list[dict]:
    """After a batch failed for a reason other than an outage: each frame alone, so that one
    frame the database refuses (or that breaks a bug of ours) is answered with an error frame
    and recorded, and the frames around it are stored."""
    errors = []
    for seq, text in frames:
        try:
            errors += store_frames([(seq, text)], api_key)
        except DatabaseError as e:
            if dbfaults.is_unavailable(e):
                raise
            errors.append(record_unstorable(seq, text, api_key, f"could not be stored: {str(e).strip().splitlines()[0]}"))
        except Exception:
            log.exception("events/in: frame %d could not be stored", seq)
            errors.append(record_unstorable(seq, text, api_key, "could not be stored: internal error"))
    return errors


def record_unstorable(seq: int, text: str, api_key, rule: str) -> dict:
    IngestProblem.objects.create(door="websocket", api_key=api_key, errors=[Problem(seq, "", rule).as_dict()], frame=text[:FRAME_KEEP])
    return {"type": "error", "frame": seq, "errors": [{"path": "", "rule": rule}]}


def authorization(scope) -> str:
    """The upgrade request's Authorization header: `Basic` from the SDK with
    PREFECT_API_AUTH_STRING, `bearer` from its Cloud clients (PREFECT_API_KEY)."""
    for name, value in scope.get("headers") or []:
        if name.lower() == b"authorization":
            return value.decode("latin-1")
    return ""


async def authenticate(consumer: AsyncWebsocketConsumer, text: str) -> tuple[object | None, bool]:
    """Prefect's first message, `{"type":"auth","token":…}`, or an Authorization header on the
    upgrade: (the API key or None after closing with 1008, whether `text` was the auth message).

    Prefect's Cloud events client sends no auth message, only a header: its first frame is
    already an event.
    """
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        message = None
    is_auth = isinstance(message, dict) and message.get("type") == "auth"
    header = authorization(consumer.scope)
    if not is_auth and not header:
        await consumer.close(code=1008, reason="Expected 'auth' message")
        return None, False
    token = message.get("token") if is_auth else None
    raw = token if isinstance(token, str) and token else key_from_header(header)[0]
    key, wait = await database_sync_to_async(check_key)(raw, (consumer.scope.get("client") or [None])[0])
    if wait is not None:
        await consumer.close(code=1013, reason=throttle.too_many_wrong_keys_message(wait))
        return None, is_auth
    if key is None or key.revoked is not None:
        await consumer.close(code=1008, reason="Missing API key (set PREFECT_API_AUTH_STRING to an Eventfeed API key)" if not raw else "Invalid or revoked API key")
        return None, is_auth
    if is_auth:
        await consumer.send(json.dumps({"type": "auth_success"}))
    return key, is_auth


class Consumer(AsyncWebsocketConsumer):
    """A websocket consumer that dispatches frames without a trip to the sync thread.

    Channels closes stale database connections before every message, which waits for the one
    thread that runs synchronous code; while that thread stores the previous batch, frames
    would be read one per database write. Our database work goes through
    database_sync_to_async, which closes stale connections itself.
    """

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def send_json(self, data: dict) -> None:
        await self.send(json.dumps(data))

    @cached_property
    def live_send(self):
        """The send beneath Channels' session middleware, for live frames: that middleware asks on
        every message whether the session needs saving (only an HTTP response can save it), and
        with a thousand feeds open the asking cost a tenth of the server's time."""
        wrapper = getattr(self.base_send, "__self__", None)
        return wrapper.real_send if isinstance(wrapper, InstanceSessionWrapper) else self.base_send

    async def send_errors(self, errors: list[dict]) -> None:
        await self.send_json({"type": "error", "errors": errors})


class EventsInConsumer(Consumer):
    """Prefect's `/api/events/in`: an auth message, then one event JSON per text frame.

    Unlike Prefect's server, a bad frame is answered with an error frame (and recorded on the
    ingest problems page) and the connection stays open; valid frames keep flowing.
    """

    async def __call__(self, scope, receive, send) -> None:
        # Frames come only from the socket. Channels' own loop also listens on a channel-layer
        # channel, which costs a task and an asyncio.wait() per frame: a fifth of the server's
        # time per event at thousands of frames a second.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def connect(self) -> None:
        self.api_key = None
        self.closed = False
        self.pending: list[tuple[int, str]] = []
        self.seq = 0
        self.flusher: asyncio.Task | None = None
        offered = self.scope.get("subprotocols") or []
        await self.accept("prefect" if "prefect" in offered else None)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            try:
                text_data = (bytes_data or b"").decode("utf-8")
            except UnicodeDecodeError:
                text_data = ""
        if self.api_key is None:
            self.api_key, was_auth = await authenticate(self, text_data)
            if was_auth or self.api_key is None:
                return
        self.pending.append((self.seq, text_data))
        self.seq += 1
        if len(self.pending) >= HIGH_WATER:
            await self.flush()
        elif self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self.flush())

    async def flush(self) -> None:
        """Store everything pending, in order; one flush at a time. Frames leave `pending` only
        once stored: while the database is away this waits (and the socket is not read)."""
        if self.flusher is not None and not self.flusher.done() and asyncio.current_task() is not self.flusher:
            await self.flusher
        while self.pending:
            batch = self.pending[:BATCH]
            errors = await self.store(batch)
            if errors is None:
                return
            del self.pending[: len(batch)]
            for error in errors:
                await self.send(json.dumps(error))

    async def store(self, batch: list[tuple[int, str]]) -> list[dict] | None:
        """Store a batch, retrying while the database is unavailable; None if the sender left
        and the database stayed away past GIVE_UP_SECONDS (those frames were never confirmed:
        the SDK resends them after it reconnects)."""
        delay, gone_since = RETRY_FIRST_SECONDS, None
        while True:
            try:
                return await database_sync_to_async(store_frames)(batch, self.api_key)
            except DatabaseError as e:
                if not dbfaults.is_unavailable(e):
                    log.exception("events/in: a batch of %d frames failed; storing them one by one", len(batch))
                    return await database_sync_to_async(store_frames_one_by_one)(batch, self.api_key)
                error = e
            except Exception:
                log.exception("events/in: a batch of %d frames failed; storing them one by one", len(batch))
                return await database_sync_to_async(store_frames_one_by_one)(batch, self.api_key)
            if self.closed:
                gone_since = gone_since or time.monotonic()
                if time.monotonic() - gone_since > GIVE_UP_SECONDS:
                    log.error("events/in: the sender left and the database is still unavailable; "
                              "%d unconfirmed frames were not stored", len(self.pending))
                    return None
            log.warning("events/in: database unavailable (%s); %d frames wait, retrying in %.1f s",
                        str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
                        len(self.pending), delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    async def websocket_checkpoint(self, message: dict) -> None:
        """A ping (eventfeed.serving hands it over in order with the frames): the pong goes out
        once every frame before it is stored."""
        await self.flush()
        if not self.closed:
            await self.base_send({"type": "websocket.pong", "payload": message.get("payload") or b""})

    async def websocket_disconnect(self, message: dict) -> None:
        self.closed = True
        await super().websocket_disconnect(message)

    async def disconnect(self, code: int) -> None:
        # Frames already read are stored even though the sender has gone.
        await self.flush()


MAX_BACKFILL = timedelta(minutes=settings.EVENTFEED_MAX_BACKFILL_MINUTES)
BACKFILL_PAGE = 250
# Live events held while a subscriber's backfill is still being sent.
MAX_HELD = 10_000
BACKFILL_OVERLAP_SECONDS = 5


class FeedConsumer(Consumer):
    """The browser feed's socket: `{"type":"subscribe","query":"<the page's query string>"}`
    (again on every filter change), then `{"type":"rows","rows":[{id, occurred, html}]}` frames
    rendered by the same partial as the page."""

    wants_rows = True

    async def connect(self) -> None:
        await self.accept()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401, reason="Sign in to watch the live feed")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "subscribe" or not isinstance(message.get("query", ""), str):
            await self.send_json({"type": "error", "errors": {"message": ['Expected {"type": "subscribe", "query": "…"}']}})
            return
        form = FeedFilterSet(QueryDict(message.get("query", "").lstrip("?")))
        if not form.is_valid():
            # The socket stays open: the page shows the error and subscribes again when fixed.
            live.hub().unsubscribe(self)
            await self.send_json({"type": "error", "errors": form.errors})
            return
        await live.hub().subscribe(self, form.event_filter())
        await self.send_json({"type": "subscribed"})

    async def deliver(self, events: list[live.LiveEvent], frames: live.Frames) -> None:
        await self.live_send({"type": "websocket.send", "text": frames.rows(events)})

    async def missed(self) -> None:
        # The page reconnects on any close but 4401, subscribes again and catches up from the
        # store by arrival: the one path that already leaves no gap.
        live.hub().unsubscribe(self)
        await self.close(code=1012, reason=live.LOST_REASON)

    async def disconnect(self, code: int) -> None:
        live.hub().unsubscribe(self)


class EventsOutConsumer(Consumer):
    """Prefect's `/api/events/out`: auth, then `{"type":"filter","filter":…,"backfill":…}`, then
    `{"type":"event","event":…}` frames: the backfill (oldest first), then live events.

    Unlike Prefect's server, the `related` filter applies to live events too, a filter with no
    `until` receives live events, a bad filter gets an error frame instead of a dead socket,
    and a subscriber too slow to keep up is closed with 1013 instead of silently losing events.
    """

    async def connect(self) -> None:
        self.api_key = None
        self.filter = None
        self.held: list[live.LiveEvent] | None = None
        self.backfilled: set = set()
        offered = self.scope.get("subprotocols") or []
        await self.accept("prefect" if "prefect" in offered else None)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.api_key is None:
            self.api_key, was_auth = await authenticate(self, text_data or "")
            if was_auth or self.api_key is None:
                return
        if self.filter is not None:
            await self.send_errors([{"path": "", "rule": "the filter is already set; reconnect to change it"}])
            return
        try:
            message = json.loads(text_data or "")
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "filter":
            await self.send_errors([{"path": "type", "rule": "Expected 'filter' message"}])
            return
        try:
            f = from_json(message.get("filter"))
        except FilterError as e:
            await self.send_errors(e.as_list())
            return
        self.filter = f
        backfill = message.get("backfill", True) is not False
        if backfill:
            self.held = []
        # Subscribe before reading the backfill, so that nothing falls between the two. With
        # `resource.distinct` the backfill is the newest event of each resource (as /filter) and
        # every live event is the new newest of its resource, so the live side ignores it (as
        # Prefect's server does).
        await live.hub().subscribe(self, replace(f, distinct=False))
        if backfill:
            await self.send_backfill(f)

    async def send_backfill(self, f) -> None:
        since = timezone.now() - MAX_BACKFILL
        if f.since is not None and f.since > since:
            since = f.since
        query = replace(f, since=since, order="ASC")
        after = None
        while True:
            page, more = await database_sync_to_async(query.page)(limit=BACKFILL_PAGE, after=after)
            for event in page:
                self.backfilled.add(event.id)
                await self.send(json.dumps({"type": "event", "event": wire(event)}))
            if not more:
                break
            after = (page[-1].occurred, page[-1].id)
        if not f.distinct:
            await self.send_arrived_earlier(f, since)
        held, self.held = self.held, None
        await self.deliver(held)
        # An event the last backfill page read may still be in the hub's next flush: keep
        # skipping backfilled ids a little longer than a flush takes.
        asyncio.get_running_loop().call_later(BACKFILL_OVERLAP_SECONDS, self.backfilled.clear)

    async def send_arrived_earlier(self, f, since) -> None:
        """The backfill's second half: events that arrived since `since` but claim an earlier
        time. The SDK asks by `occurred` from its last event; an event stamped in the past that
        arrived during the gap would otherwise never reach it."""
        late = replace(f, since=None)
        cursor = (since, uuid.UUID(int=0))
        while True:
            page, more = await database_sync_to_async(queries.arrived_after)(late, cursor, BACKFILL_PAGE)
            for event in page:
                if event.occurred < since and event.id not in self.backfilled:
                    self.backfilled.add(event.id)
                    await self.send(json.dumps({"type": "event", "event": wire(event)}))
            if not more:
                return
            cursor = (page[-1].received, page[-1].id)

    async def deliver(self, events: list[live.LiveEvent], frames: live.Frames | None = None) -> None:
        if self.held is not None:
            self.held.extend(events)
            if len(self.held) > MAX_HELD:
                live.hub().unsubscribe(self)
                await self.close(code=1013, reason="Subscriber too slow: reconnect and backfill")
            return
        for event in events:
            if event.id not in self.backfilled:
                await self.live_send({"type": "websocket.send", "text": event.prefect_frame})

    async def missed(self) -> None:
        # The Prefect SDK reconnects on a close and asks for a backfill from its last event.
        live.hub().unsubscribe(self)
        await self.close(code=1013, reason=live.LOST_REASON)

    async def disconnect(self, code: int) -> None:
        live.hub().unsubscribe(self)
