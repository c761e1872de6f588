"""Websocket doors: `/api/events/in` (Prefect's ingest protocol)."""

from __future__ import annotations

import asyncio
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError

from .auth import find_key
from .ingest import ingest
from .models import IngestProblem
from .schema import Problem, validate_event

log = logging.getLogger(__name__)

# Frames are stored in batches of up to this many, in arrival order.
BATCH = 500
# With this many frames read but not stored, the consumer stops reading until they are stored;
# Daphne's queue then fills and eventfeed.backpressure pauses the socket, slowing the sender.
HIGH_WATER = 2_000
FRAME_KEEP = 10_000


def store_frames(frames: list[tuple[int, str]], api_key) -> list[dict]:
    """Validate and store frames (sequence number, text); return one error frame per bad one."""
    clean, bad = [], []
    for seq, text in frames:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            problems = [Problem(seq, "", f"not valid JSON: {e.msg} at column {e.colno}")]
        else:
            event, problems = validate_event(raw, seq, size=len(text.encode()))
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


class EventsInConsumer(AsyncWebsocketConsumer):
    """Prefect's `/api/events/in`: an auth message, then one event JSON per text frame.

    Unlike Prefect's server, a bad frame is answered with an error frame (and recorded on the
    ingest problems page) and the connection stays open; valid frames keep flowing.
    """

    async def connect(self) -> None:
        self.api_key = None
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
            await self.authenticate(text_data)
            return
        self.pending.append((self.seq, text_data))
        self.seq += 1
        if len(self.pending) >= HIGH_WATER:
            await self.flush()
        elif self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self.flush())

    async def authenticate(self, text: str) -> None:
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            message = None
        if not isinstance(message, dict) or message.get("type") != "auth":
            await self.close(code=1008, reason="Expected 'auth' message")
            return
        key = await database_sync_to_async(find_key)(message.get("token"))
        if key is None or key.revoked is not None:
            reason = "Missing API key" if not message.get("token") else "Invalid or revoked API key"
            await self.close(code=1008, reason=reason)
            return
        self.api_key = key
        await self.send(json.dumps({"type": "auth_success"}))

    async def flush(self) -> None:
        """Store everything pending, in order; one flush at a time."""
        if self.flusher is not None and not self.flusher.done() and asyncio.current_task() is not self.flusher:
            await self.flusher
        while self.pending:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            try:
                errors = await database_sync_to_async(store_frames)(batch, self.api_key)
            except DatabaseError:
                log.exception("events/in: could not store %d frames", len(batch))
                # Closing makes the SDK reconnect and resend what it has not seen confirmed.
                self.pending = []
                await self.close(code=1011, reason="Storage error; reconnect and resend")
                return
            for error in errors:
                await self.send(json.dumps(error))

    async def disconnect(self, code: int) -> None:
        # Frames already read are stored even though the sender has gone.
        await self.flush()
