"""The one code path that stores events, whatever door they came in by."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

import msgspec
import psycopg
from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import dbfaults, jsoncodec, partitions
from .models import EPOCH, ROLLUP_WIDTHS, Event, EventCount, EventResource, resource_rows
from .schema import RESOURCE_ID, RESOURCE_ROLE, CleanEvent
from .wire import wire

log = logging.getLogger(__name__)

EVENTS_GROUP = "events"
# Channel-layer messages stay well under channels-redis' comfortable size: at most this many
# events, and past about this many characters of JSON a message ends (channels-redis serializes a
# message once for every process it goes to, all at once: one message of the largest request's
# events cost several times the request).
PUBLISH_CHUNK = 200
PUBLISH_CHARS = 256 * 1024


@dataclass
class IngestResult:
    new: int
    duplicates: int
    stored: list[CleanEvent]

    def as_dict(self) -> dict[str, int]:
        return {"new": self.new, "duplicates": self.duplicates}


def ingest(events: Sequence[CleanEvent]) -> IngestResult:
    """Store the events that are new, all or nothing, and publish them once committed.

    Returns how many were new and how many were already stored (or repeated in the batch).
    """
    unique: dict = {}
    for event in events:
        unique.setdefault(event.id, event)
    # Rows are written in id order: COPY locks each primary key as it writes it, and two
    # batches sharing ids in different orders would otherwise deadlock. They are published in
    # the order they came.
    by_id = sorted(unique.values(), key=lambda e: e.id.int)  # UUIDs compare in Python code; ints do not

    # Before the transaction's first statement: creating a partition locks the whole table, and a
    # transaction that had already read it could deadlock with another doing the same.
    partitions.ensure({partitions.day_of(e.occurred) for e in by_id})

    def store_new() -> list[CleanEvent]:
        with transaction.atomic():
            received = arrival_time()
            for event in by_id:
                event.received = received
            existing = already_stored(by_id)
            written = _store([e for e in by_id if e.id not in existing] if existing else by_id)
            if len(written) == len(by_id):
                fresh = list(unique.values())  # nearly every batch: all of it new
            else:
                ids = {e.id for e in written}
                fresh = [e for e in unique.values() if e.id in ids]
            if fresh:
                add_counts(fresh)
                transaction.on_commit(lambda: publish(fresh))
        return fresh

    # A deadlock or serialization failure left by another writer is retried here, so that no
    # door answers it with an error.
    fresh = dbfaults.retrying(store_new)
    return IngestResult(new=len(fresh), duplicates=len(events) - len(fresh), stored=fresh)


def arrival_time() -> datetime:
    """`received` for the rows the current transaction is about to write.

    The automation catch-up (automations/catchup.py) reads the store by arrival and must never
    pass a time that a transaction still open may yet commit. On PostgreSQL the time is the
    database's clock taken after the transaction has its id, so an open writer's xact_start (in
    pg_stat_activity) is never later than the `received` it writes; on SQLite writers take the
    database lock in turn, so the times commit in order."""
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_xact_id(), clock_timestamp()")
        return cursor.fetchone()[1]


MINUTE = timedelta(minutes=1)


def rollup_counts(occurred_names: Counter) -> Counter:
    """(occurred, event name) → n, as the EventCount rows they add to: (width, bucket start in
    seconds since the epoch, name) → n."""
    per_minute: Counter = Counter()
    for (occurred, name), n in occurred_names.items():
        per_minute[((occurred - EPOCH) // MINUTE, name)] += n
    counts: Counter = Counter()
    for (minute, name), n in per_minute.items():
        seconds = minute * 60
        for width in ROLLUP_WIDTHS:
            counts[(width, seconds - seconds % width, name)] += n
    return counts


def add_counts(events: list[CleanEvent]) -> None:
    """Add the events to the per-minute and per-hour counts (EventCount), in sorted key order so
    that concurrent batches lock the same rows in the same order.

    Buckets are counted as whole seconds since the epoch (timedelta arithmetic is exact, where a
    float timestamp can round a last microsecond into the next minute); a datetime is made only
    per bucket, and on PostgreSQL not at all."""
    counts = rollup_counts(Counter((e.occurred, e.event) for e in events))
    table = EventCount._meta.db_table
    rows = sorted(counts.items())
    upsert = f" ON CONFLICT (width, bucket, event) DO UPDATE SET count = {table}.count + excluded.count"
    if connection.vendor == "postgresql":
        # A backfill batch can touch 1,500 buckets: the numbers go as comma-separated text that
        # the server splits (psycopg dumps an array element by element in Python, which cost
        # more than the rest of the upsert), the names once each, by position.
        names = {name: i for i, name in enumerate(dict.fromkeys(k[2] for k, _ in rows), 1)}
        with binary_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (width, bucket, event, count) "
                "SELECT w, to_timestamp(b), (%b::text[])[e], n FROM unnest(string_to_array(%b, ',')::int[], "
                "string_to_array(%b, ',')::bigint[], string_to_array(%b, ',')::int[], string_to_array(%b, ',')::int[]) "
                "AS u(w, b, e, n)" + upsert,
                [list(names), ",".join([str(k[0]) for k, _ in rows]), ",".join([str(k[1]) for k, _ in rows]),
                 ",".join([str(names[k[2]]) for k, _ in rows]), ",".join([str(n) for _, n in rows])],
            )
        return
    with connection.cursor() as cursor:
        adapt = connection.ops.adapt_datetimefield_value
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            cursor.execute(
                f"INSERT INTO {table} (width, bucket, event, count) VALUES "
                + ",".join(["(%s, %s, %s, %s)"] * len(chunk)) + upsert,
                [v for (width, bucket, name), n in chunk
                 for v in (width, adapt(EPOCH + timedelta(seconds=bucket)), name, n)],
            )


@contextmanager
def binary_cursor() -> Iterator[psycopg.Cursor]:
    """A cursor on Django's connection (in its transaction) that binds parameters on the server.
    Django's own cursors quote every parameter into the SQL text in Python. Its errors become
    Django's, as a Django cursor's would, so that callers catch one kind of DatabaseError."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


# On PostgreSQL an id is looked for within this margin of the batch's times (see already_stored).
DEDUPE_MARGIN = timedelta(days=1)


def already_stored(events: list[CleanEvent]) -> set:
    """The ids of these events that are stored already.

    On PostgreSQL the events table is partitioned by day and its primary key is (id, occurred):
    no index covers an id across partitions. A re-sent event carries the same `occurred`, so the
    search is limited to the partitions of the batch's days and a day either side (a producer
    re-sending with a fresh clock is still caught); the same id reused more than a day away from
    the stored one is not found, and is stored a second time.
    """
    ids = [e.id for e in events]
    if connection.vendor == "postgresql":
        low = min(e.occurred for e in events) - DEDUPE_MARGIN
        high = max(e.occurred for e in events) + DEDUPE_MARGIN
        # One binary array rather than 500 quoted placeholders; the time bounds are what prune
        # the partitions searched.
        with binary_cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {Event._meta.db_table} WHERE id = ANY(%b) AND occurred >= %b AND occurred <= %b",
                [ids, low, high],
            )
            return {row[0] for row in cursor.fetchall()}
    return set(Event.objects.filter(id__in=ids).values_list("id", flat=True))


def _store_orm(events: list[CleanEvent]) -> None:
    Event.objects.bulk_create(
        [
            Event(
                id=e.id,
                occurred=e.occurred,
                received=e.received,
                event=e.event,
                resource_id=e.resource_id,
                resource=e.resource,
                related=e.related,
                payload=e.payload,
                follows=e.follows,
                words=e.words,
            )
            for e in events
        ],
        batch_size=500,
    )
    EventResource.objects.bulk_create(
        [
            EventResource(
                event_id=e.id,
                occurred=e.occurred,
                event_name=e.event,
                resource_id=rid,
                role=role,
                labels=labels,
            )
            for e in events
            for rid, role, labels in resource_rows(e.resource, e.related)
        ],
        batch_size=500,
    )


EVENT_COLUMNS = "id, occurred, received, event, resource_id, resource, related, payload, follows, words"
RESOURCE_COLUMNS = "event_id, occurred, event_name, resource_id, role, labels"


# COPY's text format: a backslash, and the tab, newline and carriage return that separate
# columns and rows, are written as escapes.
COPY_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _esc(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _esc_json(value: bytes) -> str:
    # JSON text holds no raw tab, newline or carriage return (they are written \t, \n, \r):
    # only its backslashes need escaping.
    text = value.decode()
    return text.replace("\\", "\\\\") if "\\" in text else text


_encode = msgspec.json.Encoder().encode
_EMPTY = b"{}"


def event_lines(events: list[CleanEvent]) -> Iterator[str]:
    """The rows of the events table in COPY's text format, for EVENT_COLUMNS.

    Written by hand rather than by psycopg's write_row(): the values are strings, UUIDs and
    datetimes of known shape, and a join costs half as much per event. The JSON of an event
    that came by the fast path (schema.decode_clean) is the text written there.
    """
    dumps = _json_bytes
    received, received_text = None, ""
    for e in events:
        if e.received is not received:
            received, received_text = e.received, e.received.isoformat()
        if e.json is not None:
            resource, items, payload = e.json
            related = b"[" + b",".join(items) + b"]"
        else:
            resource, related, payload = dumps(e.resource), dumps(e.related), dumps(e.payload)
        yield (
            f"{e.id_text}\t{e.occurred_text}\t{received_text}\t{_esc(e.event)}\t{_esc(e.resource_id)}\t"
            f"{_esc_json(resource)}\t{_esc_json(related)}\t{_esc_json(payload)}\t"
            f"{e.follows or COPY_NULL}\t{e.words_text}\n"
        )


# A related resource's row as COPY text (after the event's id, time and name), with its id and
# role, by the resource's JSON (CleanEvent.json): the same few resources come with event after
# event. Emptied when full.
_related_rows: dict[bytes, tuple[tuple[str, str], str]] = {}
RELATED_ROWS_KEPT = 4096


def _related_row(labels: dict[str, str]) -> tuple[tuple[str, str], str]:
    """((id, role), the row's text after the event's columns)."""
    rid, role = labels[RESOURCE_ID], labels[RESOURCE_ROLE]
    # Most related resources (tags) carry nothing but their id and role.
    rest = _json_bytes({k: v for k, v in labels.items() if k != RESOURCE_ID and k != RESOURCE_ROLE}) if len(labels) > 2 else _EMPTY
    return (rid, role), f"{_esc(rid)}\t{_esc(role)}\t{_esc_json(rest)}\n"


def resource_lines(events: list[CleanEvent]) -> Iterator[str]:
    """The rows of the resources table in COPY's text format, for RESOURCE_COLUMNS: those of
    resource_rows(), written out."""
    dumps = _json_bytes
    cache = _related_rows
    for e in events:
        head = f"{e.id_text}\t{e.occurred_text}\t{_esc(e.event)}\t"
        rid = e.resource_id
        rest = dumps({k: v for k, v in e.resource.items() if k != RESOURCE_ID}) if len(e.resource) > 1 else _EMPTY
        yield f"{head}{_esc(rid)}\t\t{_esc_json(rest)}\n"
        items = e.json[1] if e.json is not None else None
        # Each (id, role) once.
        seen = {(rid, "")}
        for i, labels in enumerate(e.related):
            if items is None:
                key, row = _related_row(labels)
            else:
                found = cache.get(items[i])
                if found is None:
                    if len(cache) >= RELATED_ROWS_KEPT:
                        cache.clear()
                    found = cache[items[i]] = _related_row(labels)
                key, row = found
            if key not in seen:
                seen.add(key)
                yield head + row


def _json_bytes(value) -> bytes:
    try:
        return _encode(value)
    except (UnicodeEncodeError, TypeError):
        return jsoncodec.dumps(value).encode()


def copy_text(events: list[CleanEvent]) -> tuple[str, str]:
    """The rows of both tables in COPY's text format, each table's as one text."""
    return "".join(event_lines(events)), "".join(resource_lines(events))


# COPY is fed in pieces of about this many characters: a request of 1.5 MB events never holds
# its whole COPY text at once (the largest request cost the server several times its size while
# it was written). Below the allocator's mmap threshold (serving.MMAP_THRESHOLD), so a piece and
# its encoded bytes reuse heap memory: 1 MB pieces were each a fresh mapping whose page faults
# cost ingest 8 µs of system time per event. Below psycopg's 128 KB too, which copies a bigger
# write into slices of that size.
COPY_PIECE = 64 * 1024


def _copy_in_pieces(copy, lines: Iterator[str]) -> None:
    piece: list[str] = []
    size = 0
    for line in lines:
        piece.append(line)
        size += len(line)
        if size >= COPY_PIECE:
            copy.write("".join(piece))
            piece, size = [], 0
    if piece:
        copy.write("".join(piece))


def _copy_rows(events: list[CleanEvent]) -> None:
    # The raw cursor's COPY; its errors become Django's (IntegrityError for a duplicate id), as
    # the cursor wrapper's would.
    with connection.cursor() as wrapper, connection.wrap_database_errors:
        cursor = wrapper.cursor
        with cursor.copy(f"COPY {Event._meta.db_table} ({EVENT_COLUMNS}) FROM STDIN") as copy:
            _copy_in_pieces(copy, event_lines(events))
        with cursor.copy(f"COPY {EventResource._meta.db_table} ({RESOURCE_COLUMNS}) FROM STDIN") as copy:
            _copy_in_pieces(copy, resource_lines(events))


def _store(events: list[CleanEvent]) -> list[CleanEvent]:
    """Write the events and their resource rows (COPY on PostgreSQL); returns those stored.

    The duplicate check before this is not a lock: a concurrent batch carrying some of the same
    ids can commit between the check and the write, which then fails on the primary key. Those
    ids are visible by then, so the write is retried without them.
    """
    write = _copy_rows if connection.vendor == "postgresql" else _store_orm
    recreated = False
    while events:
        try:
            with transaction.atomic():
                write(events)
            return events
        except IntegrityError as error:
            if isinstance(error.__cause__, psycopg.errors.CheckViolation) and not recreated:
                # "No partition for the row": retention dropped a day this process thought it
                # had. Created again here, inside the transaction (rare: a late event for a day
                # just pruned).
                days = {partitions.day_of(e.occurred) for e in events}
                partitions.forget(days)
                partitions.ensure(days)
                recreated = True
                continue
            existing = already_stored(events)
            remaining = [e for e in events if e.id not in existing]
            if len(remaining) == len(events):
                raise  # not a duplicate id: a real error
            log.info("ingest: %d ids stored meanwhile by another writer", len(events) - len(remaining))
            events = remaining
    return events


_sending: set[asyncio.Task] = set()


def _messages(events: Sequence[CleanEvent]) -> Iterator[Sequence[CleanEvent]]:
    """The events in publishing order, cut into messages of at most PUBLISH_CHUNK events and,
    when they are big, about PUBLISH_CHARS (an event bigger than that goes alone)."""
    start, chars = 0, 0
    for i, event in enumerate(events):
        if i > start and (i - start == PUBLISH_CHUNK or chars + event.size > PUBLISH_CHARS):
            yield events[start:i]
            start, chars = i, 0
        chars += event.size
    if start < len(events):
        yield events[start:]


def publish(events: Sequence[CleanEvent]) -> None:
    """Tell everything downstream of storage (live feeds, subscribers, automations)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Called from a thread that runs an event loop (a script driving an async client):
        # async_to_sync cannot block it, so the sends are scheduled on that loop instead.
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    server_loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    if loop is None and server_loop is not None and not server_loop.is_running():
        # A worker thread finishing its work while the server shuts down: async_to_sync would
        # wait forever for the stopped loop, and the process would never exit. The events are
        # stored; a live page catches up when it reconnects.
        log.warning("ingest: the server is stopping; %d stored events were not published", len(events))
        return
    for chunk in _messages(events):
        message = {"type": "events.stored", "events": [wire(e) for e in chunk]}
        try:
            if loop is not None:
                # The loop holds tasks weakly: keep each until it is done.
                task = loop.create_task(layer.group_send(EVENTS_GROUP, message))
                _sending.add(task)
                task.add_done_callback(_sending.discard)
            else:
                async_to_sync(layer.group_send)(EVENTS_GROUP, message)
        except Exception:
            # The events are stored; a live viewer that misses them catches up from the
            # database after its reconnect. Ingest must not fail for a push problem.
            log.exception("ingest: could not publish %d events to the channel layer", len(message["events"]))
