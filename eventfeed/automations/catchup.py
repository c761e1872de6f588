"""The catch-up: the evaluator reads the store by arrival, behind the live path.

The live path (service.Service._consumer) evaluates what ingest publishes on the channel layer,
which delivers at most once: a message published while no evaluator reads it (the worker
killed, Redis flushed or restarted, more than 60 s unread) or a batch whose transaction failed
(the database away) is gone. So every evaluator also sweeps the events table in arrival order
from a persisted high-water mark (models.CatchUpMark), a few seconds behind, and evaluates what
the live path did not: the claims (engine.claim, one row per evaluated event) make sure no event
is evaluated twice, whichever path comes first. The mark moves in the same transaction as the
claims, firings and action runs of what it passed, so a kill or an outage mid-sweep leaves
either all of it or none.

One process sweeps at a time (the mark's row is locked, others skip it). The mark never passes a
time that a transaction still open may commit (see `horizon`), so a slow writer is not skipped.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from eventfeed.events.models import Event
from eventfeed.events.patterns import _kind
from eventfeed.events.wire import wire

from . import engine
from .models import CatchUpMark, EvaluatedEvent, Firing

log = logging.getLogger(__name__)

# How far behind the clock the sweep stays: the live path has evaluated (and claimed) almost
# everything by then, so the sweep mostly confirms rather than doing the work twice.
LAG = timedelta(seconds=5)
BATCH = 2000
NIL = uuid.UUID(int=0)


def horizon() -> datetime:
    """The arrival time up to which every event that will ever be stored is stored now.

    On PostgreSQL: LAG before the database's clock, and before the start of any transaction
    that is still open and has written (ingest takes its `received` from the database clock
    after its transaction has an id, ingest.arrival_time). On SQLite writers take turns, so the
    clock alone is enough."""
    if connection.vendor != "postgresql":
        return timezone.now() - LAG
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT least(clock_timestamp() - %s, (SELECT min(xact_start) FROM pg_stat_activity "
            "WHERE datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()))",
            [LAG],
        )
        return cursor.fetchone()[0]


def mark() -> CatchUpMark:
    """The mark, created at the present when it is missing (a database emptied by a test)."""
    now = timezone.now()
    row, _ = CatchUpMark.objects.get_or_create(pk=1, defaults={"received": now, "event_id": NIL, "updated": now})
    return row


def _names(index: engine.TriggerIndex) -> Q | None:
    """The event names some enabled trigger looks at, as a condition on the events table; None
    when a glob can match any name (every event is read)."""
    exact = set(index.exact)
    prefixes = []
    for pattern, _, _ in index.patterns:
        if _kind(pattern) != "prefix":
            return None
        prefixes.append(pattern[:-1])
    condition = Q(event__in=sorted(exact))
    for prefix in prefixes:
        condition |= Q(event__startswith=prefix)
    return condition


def pending() -> bool:
    """A read before the sweep's transaction: anything stored after the mark? (On SQLite every
    transaction takes the write lock, and the sweep runs every second.)"""
    row = mark()
    return Event.objects.filter(received__gt=row.received).exists()


def sweep(limit: int | None = None) -> tuple[int, list[Firing]] | None:
    """Evaluate up to `limit` events that arrived after the mark and before the horizon, and
    move the mark past them. Returns (events read, firings), or None when another process holds
    the mark."""
    limit = limit or BATCH
    mark()
    with transaction.atomic():
        row = CatchUpMark.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if row is None:
            return None
        until = horizon()
        index = engine.current_index()
        events: list[Event] = []
        if index.entries:
            found = Event.objects.defer("words").filter(
                Q(received__gt=row.received) | Q(received=row.received, id__gt=row.event_id), received__lt=until)
            names = _names(index)
            if names is not None:
                found = found.filter(names)
            # What the live path claimed is not read again: one index probe per event rather
            # than its payload, its evaluation and a claim that conflicts.
            found = found.filter(~Exists(EvaluatedEvent.objects.filter(event_id=OuterRef("id"))))
            events = list(found.order_by("received", "id")[:limit])
        fired: list[Firing] = []
        if events:
            fired = engine.evaluate([wire(e) for e in events], arrived={str(e.id): e.received for e in events})
        if len(events) == limit:
            row.received, row.event_id = events[-1].received, events[-1].id
        elif until > row.received:
            # All read up to the horizon: the mark moves to it (a later event with this very
            # time and any id is still after it).
            row.received, row.event_id = until, NIL
        row.updated = timezone.now()
        row.save()
    if fired:
        log.info("automations: the catch-up fired %d times for %d events the live path had not evaluated",
                 len(fired), len(events))
    return len(events), fired

