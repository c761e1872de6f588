"""Mirror a Prefect server's events: its `/api/events/out` stream, stored through the one ingest
path, with the position kept in the database so that any interruption is backfilled.

Prefect's subscriber backfill reaches 15 minutes back (the server clamps `since`); a follower
that was away longer first pages through `/api/events/filter` from its position, then
subscribes. Every event is stored by id, so the overlaps (a minute before the position, as
Prefect's own subscriber replays) store nothing twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlparse

import httpx
from channels.db import database_sync_to_async
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from eventfeed import audit
from eventfeed.events.emit import emit
from eventfeed.events.ingest import ingest
from eventfeed.events.models import Event, IngestProblem
from eventfeed.events.problems import parse_time
from eventfeed.events.schema import RESOURCE_ID, validate_event
from eventfeed.events.wire import iso

from .models import FollowedServer

log = logging.getLogger(__name__)

# Prefect's own subscriber resumes from a minute before the last event it saw.
REPLAY = timedelta(minutes=1)
# Prefect's /out backfills at most 15 minutes back; from further back, page through /filter.
SOCKET_REACH = timedelta(minutes=14)
# Prefect's subscriber asks for events until a year ahead: without an `until` its server sends
# only the backfill (PREFECT-COMPAT 1.3).
UNTIL_AHEAD = timedelta(days=365)
# While connected, this often the follower asks the server's REST API for its newest event (from
# AUDIT_SETTLE seconds ago, so that the stream has had time to bring it): a socket the server
# stopped feeding (it was restarted under the follower, a proxy dropped the subscription) sends no
# error, and an event the stream never brought means reconnecting, which backfills.
AUDIT_EVERY = 30.0
AUDIT_SETTLE = timedelta(seconds=10)
# Seconds between reconnection attempts, the last repeated.
RETRY = (1, 2, 3, 5, 10)
BATCH = 500
LINGER = 0.2
# Prefect's /events/filter answers at most 50 a page.
PAGE = 50
MAX_MESSAGE = 16 * 1024 * 1024
FRAME_KEEP = 10_000


class FollowError(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    """A Prefect Cloud API key (Bearer) or a self-hosted server's auth string (Basic)."""

    key: str = ""
    auth_string: str = ""

    def headers(self) -> dict[str, str]:
        if self.key:
            return {"Authorization": f"Bearer {self.key}"}
        if self.auth_string:
            return {"Authorization": "Basic " + base64.b64encode(self.auth_string.encode()).decode()}
        return {}

    @property
    def token(self) -> str | None:
        return self.key or self.auth_string or None


def api_base(url: str) -> str:
    """The API base URL: `http://host:4200` means `http://host:4200/api`."""
    url = url.rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise FollowError(f"{url!r} is not an http:// or https:// URL")
    if parsed.username is not None or parsed.password is not None:
        # The URL is shown on the Ingest problems page and names the server's events and audit
        # trail: a password in it would be shown to every user.
        raise FollowError(f"{parsed.scheme}://…@{parsed.hostname} has credentials in it: give them with --auth-string "
                          "(or EVENTFEED_FOLLOW_PREFECT_AUTH_STRING) or --key instead")
    return url if parsed.path not in ("", "/") else url + "/api"


def socket_url(base: str) -> str:
    return "ws" + base[4:] + "/events/out" if base.startswith("http") else base


# -- the database side (sync, one thread per call) --------------------------------------------

def server_row(url: str) -> FollowedServer:
    """The server's row, made (and audited) the first time its URL is followed."""
    server = FollowedServer.objects.filter(url=url).first()
    if server is not None:
        return server
    with transaction.atomic():
        server, created = FollowedServer.objects.get_or_create(url=url)
        if created:
            audit.record("prefect-server.followed", server_resource(url), {"url": url})
    return server


def server_resource(url: str) -> dict[str, str]:
    return {RESOURCE_ID: f"eventfeed.prefect-server.{url}", "prefect.resource.name": url}


def store(url: str, raws: list[dict]) -> tuple[int, list]:
    """Validate and store events as the server sent them; move the position. Returns how many
    were new and the ids refused (kept on the Ingest problems page)."""
    clean, bad = [], []
    for raw in raws:
        event, problems = validate_event(raw)
        if event is None:
            bad.append(IngestProblem(door="prefect-follow", errors=[p.as_dict() for p in problems],
                                     frame=json.dumps(raw)[:FRAME_KEEP]))
        else:
            clean.append((event, raw.get("received")))
    if bad:
        IngestProblem.objects.bulk_create(bad)
    kept = {str(event.id) for event, _ in clean}
    refused = [raw.get("id") for raw in raws if raw.get("id") not in kept]
    if not clean:
        return 0, refused
    result = ingest([event for event, _ in clean])
    newest, received = max(clean, key=lambda pair: pair[0].occurred)
    now = timezone.now()
    lag = None
    received_at = parse_time(received)
    if received_at is not None and received_at.utcoffset() is not None:
        lag = max(0.0, (now - received_at).total_seconds())
    server = server_row(url)
    if server.position is None or newest.occurred > server.position:
        server.position = newest.occurred
    server.last_event_id = newest.id
    server.last_event_at = now
    server.lag_seconds = lag
    server.save(update_fields=["position", "last_event_id", "last_event_at", "lag_seconds", "updated"])
    FollowedServer.objects.filter(pk=server.pk).update(events_stored=F("events_stored") + result.new)
    return result.new, refused


def emit_state(url: str, what: str, payload: dict) -> None:
    """The follower's state as an event in the feed (`eventfeed.follow.connected`, …)."""
    emit(f"eventfeed.follow.{what}", server_resource(url), payload=payload)


def is_stored(event_id) -> bool:
    try:
        return Event.objects.filter(pk=uuid.UUID(str(event_id))).exists()
    except ValueError:
        return True  # not an id Eventfeed would have stored: nothing to wait for


def set_connected(url: str, connected: bool, error: str = "") -> None:
    now = timezone.now()
    fields: dict = {"connected": connected, "updated": now}
    if connected:
        fields["connected_since"] = now
    if error:
        fields.update(last_error=error[:2000], last_error_at=now)
    server_row(url)
    FollowedServer.objects.filter(url=url).update(**fields)


# -- the follower -------------------------------------------------------------------------------

def _db(fn):
    return database_sync_to_async(fn, thread_sensitive=False)


class Follower:
    def __init__(self, url: str, credentials: Credentials = Credentials(), *, rest_after: timedelta = SOCKET_REACH,
                 first_since: datetime | None = None, audit_every: float = AUDIT_EVERY):
        self.base = api_base(url)
        self.credentials = credentials
        self.rest_after = rest_after
        self.first_since = first_since
        self.audit_every = audit_every
        self.refused: set = set()

    async def run(self) -> None:
        """Follow until cancelled, reconnecting after any failure."""
        failures = 0
        while True:
            try:
                await self.session()
                error = "the server closed the stream"
            except asyncio.CancelledError:
                await _db(set_connected)(self.base, False)
                raise
            except Exception as e:  # noqa: BLE001 - any failure is recorded and retried
                error = f"{type(e).__name__}: {e}"
            log.warning("follow_prefect %s: %s", self.base, error)
            was_connected = (await _db(server_row)(self.base)).connected
            await _db(set_connected)(self.base, False, error)
            if was_connected:
                await _db(emit_state)(self.base, "disconnected", {"error": error})
                failures = 0
            await asyncio.sleep(RETRY[min(failures, len(RETRY) - 1)])
            failures += 1

    async def session(self) -> None:
        server = await _db(server_row)(self.base)
        now = timezone.now()
        position = server.position or self.first_since or now - SOCKET_REACH
        if now - position > self.rest_after:
            await self.backfill(position)
            server = await _db(server_row)(self.base)
            position = server.position or now
        since = max(position - REPLAY, timezone.now() - SOCKET_REACH)
        async with connect(socket_url(self.base), subprotocols=[Subprotocol("prefect")],
                           additional_headers=self.credentials.headers(), max_size=MAX_MESSAGE, open_timeout=15) as ws:
            await ws.send(json.dumps({"type": "auth", "token": self.credentials.token}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
            if reply.get("type") != "auth_success":
                raise FollowError(f"the server refused the credentials: {reply}")
            until = timezone.now() + UNTIL_AHEAD
            await ws.send(json.dumps({"type": "filter", "backfill": True,
                                      "filter": {"occurred": {"since": iso(since), "until": iso(until)}}}))
            await _db(set_connected)(self.base, True)
            await _db(emit_state)(self.base, "connected", {"since": iso(since)})
            tasks = [asyncio.ensure_future(self.stream(ws)), asyncio.ensure_future(self.audit())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                # A task cancelled while its database call runs on a thread waits for that call;
                # stopping does not: the call ends on its own.
                await asyncio.wait(tasks, timeout=5)
            for task in done:
                task.result()

    async def store(self, raws: list[dict]) -> None:
        _, refused = await _db(store)(self.base, raws)
        self.refused = (self.refused | set(refused)) if len(self.refused) < 1000 else set(refused)

    async def audit(self) -> None:
        async with httpx.AsyncClient(headers=self.credentials.headers(), timeout=30) as client:
            while True:
                await asyncio.sleep(self.audit_every)
                until = timezone.now() - AUDIT_SETTLE
                body = {"filter": {"occurred": {"since": iso(until - SOCKET_REACH), "until": iso(until)}, "order": "DESC"},
                        "limit": 1}
                response = await client.post(f"{self.base}/events/filter", json=body)
                if response.status_code != 200:
                    raise FollowError(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
                newest = (response.json().get("events") or [None])[0]
                if newest is not None and newest.get("id") not in self.refused and not await _db(is_stored)(newest.get("id")):
                    raise FollowError(f"the live stream never brought event {newest.get('id')}; reconnecting to backfill")

    async def stream(self, ws) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frames = [await ws.recv()]
            deadline = loop.time() + LINGER
            while len(frames) < BATCH:
                try:
                    frames.append(await asyncio.wait_for(ws.recv(), max(0.0, deadline - loop.time())))
                except asyncio.TimeoutError:
                    break
            raws = []
            for text in frames:
                message = json.loads(text)
                if message.get("type") != "event":
                    raise FollowError(f"unexpected message from the server: {text[:300]}")
                raws.append(message["event"])
            await self.store(raws)

    async def backfill(self, position: datetime) -> int:
        """Page through /events/filter from a minute before the position to now, oldest first."""
        since, until = position - REPLAY, timezone.now()
        body = {"filter": {"occurred": {"since": iso(since), "until": iso(until)}, "order": "ASC"}, "limit": PAGE}
        count = pages = 0
        async with httpx.AsyncClient(headers=self.credentials.headers(), timeout=30) as client:
            response = await client.post(f"{self.base}/events/filter", json=body)
            while True:
                if response.status_code != 200:
                    raise FollowError(f"{response.request.url} answered {response.status_code}: {response.text[:300]}")
                page = response.json()
                await self.store(page.get("events") or [])
                count += len(page.get("events") or [])
                pages += 1
                if not page.get("next_page"):
                    break
                response = await client.get(page["next_page"])
        await _db(emit_state)(self.base, "backfilled", {"events": count, "pages": pages, "since": iso(since), "until": iso(until)})
        return count


async def follow_all(urls: list[str], credentials: Credentials, **options) -> None:
    await asyncio.gather(*(Follower(url, credentials, **options).run() for url in urls))
