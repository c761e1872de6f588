"""Live evaluation: events from the channel layer and clock ticks through the core, with the
state in the database, and firings recorded as events and action runs.

Cheap per event: an in-memory index of the enabled automations by the event names their
triggers look at, and each trigger's match checked in Python, before any database work. Only
automations an event can change cost a transaction, and one transaction covers all the events
of a batch for that automation.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from eventfeed.events.filters import Matchable, _kind, glob_match
from eventfeed.events.ingest import ingest
from eventfeed.events.models import iso
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE, validate_event

from . import core, store
from .actions import full_event
from .models import ActionRun, Automation, EvaluatedEvent, Firing, TriggerState
from .triggers import PROACTIVE, REACTIVE, EventTrigger, Trigger, parse_trigger

log = logging.getLogger(__name__)

TICK_BATCH = 50
# Longer than any channel-layer redelivery (channels-redis expires messages after 60 s).
CLAIMS_KEPT = timedelta(hours=1)


@dataclass
class Entry:
    automation_id: uuid.UUID
    trigger: Trigger
    # A lone reactive trigger with threshold 1 and no `after` keeps no state: it fires per
    # matching event without taking the state row's lock.
    stateless: bool


class TriggerIndex:
    """Enabled automations by the event-name patterns of their triggers."""

    def __init__(self, automations):
        self.entries: dict[uuid.UUID, Entry] = {}
        self.exact: dict[str, set[uuid.UUID]] = defaultdict(set)
        self.prefixes: list[tuple[str, uuid.UUID]] = []
        self.globs: list[tuple[str, uuid.UUID]] = []
        for a in automations:
            try:
                trigger, _ = parse_trigger(a.trigger)
            except ValueError:
                log.warning("automation %s has an invalid trigger; it is not evaluated", a.id)
                continue
            stateless = isinstance(trigger, EventTrigger) and trigger.posture == REACTIVE and (
                trigger.threshold == 1 and not trigger.after
            )
            self.entries[a.id] = Entry(a.id, trigger, stateless)
            for t in trigger.event_triggers:
                for pattern in t.patterns:
                    kind = _kind(pattern)
                    if kind == "exact":
                        self.exact[pattern].add(a.id)
                    elif kind == "prefix":
                        self.prefixes.append((pattern[:-1], a.id))
                    else:
                        self.globs.append((pattern, a.id))

    def candidates(self, name: str) -> set[uuid.UUID]:
        out = set(self.exact.get(name, ()))
        out.update(a for prefix, a in self.prefixes if name.startswith(prefix))
        out.update(a for pattern, a in self.globs if glob_match(pattern, name))
        return out


_index_lock = threading.Lock()
_index: tuple[tuple, TriggerIndex] | None = None


def current_index() -> TriggerIndex:
    """The index, rebuilt when an automation was created, changed or deleted (by any process)."""
    global _index
    gen = store.generation()
    with _index_lock:
        if _index is None or _index[0] != gen:
            _index = (gen, TriggerIndex(Automation.objects.filter(enabled=True)))
        return _index[1]


def evaluate(events: list[dict]) -> list[Firing]:
    """Evaluate events as published by ingest (Prefect-shaped dicts). Returns the firings."""
    index = current_index()
    if not index.entries:
        return []
    wire = {}
    todo: dict[uuid.UUID, list[Matchable]] = defaultdict(list)
    for data in events:
        event = Matchable.from_wire(data)
        candidates = index.candidates(event.event)
        if not candidates:
            continue
        wire[str(event.id)] = data
        for automation_id in candidates:
            # An automation never reacts to the events it emitted itself (no feedback loop).
            if event.resource.get(RESOURCE_ID) == f"prefect.automation.{automation_id}":
                continue
            entry = index.entries[automation_id]
            if any(t.covers(event) for t in entry.trigger.event_triggers):
                todo[automation_id].append(event)
    if not todo:
        return []
    fresh = claim({e.id for events in todo.values() for e in events})
    fired = []
    for automation_id, matched in todo.items():
        matched = [e for e in matched if e.id in fresh]
        if not matched:
            continue
        matched.sort(key=lambda e: (e.occurred, str(e.id)))
        entry = index.entries[automation_id]
        try:
            fired += _evaluate_one(entry, matched, wire)
        except Exception:
            # One broken automation must not stop the others.
            log.exception("automation %s: evaluation failed", automation_id)
    return fired


def claim(ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Claim these events for evaluation; returns the ones no other evaluator had claimed."""
    if not ids:
        return set()
    table = EvaluatedEvent._meta.db_table
    field = EvaluatedEvent._meta.get_field("event_id")
    at = EvaluatedEvent._meta.get_field("at").get_db_prep_value(timezone.now(), connection)
    rows = [(field.get_db_prep_value(i, connection), at) for i in ids]
    with connection.cursor() as cursor:
        # One statement: atomic without a transaction; RETURNING names the rows it inserted
        # (PostgreSQL, and SQLite >= 3.35).
        cursor.execute(
            f"INSERT INTO {table} (event_id, at) VALUES {', '.join(['(%s, %s)'] * len(rows))} "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            [value for row in rows for value in row],
        )
        return {uuid.UUID(str(row[0])) for row in cursor.fetchall()}


def forget_claims(now: datetime) -> None:
    EvaluatedEvent.objects.filter(at__lt=now - CLAIMS_KEPT).delete()


def _evaluate_one(entry: Entry, events: list[Matchable], wire: dict) -> list[Firing]:
    with transaction.atomic():
        automation = Automation.objects.filter(pk=entry.automation_id, enabled=True).first()
        if automation is None:
            return []
        if entry.stateless:
            state = core.new_state()
            firings = [f for e in events for f in core.on_event(entry.trigger, state, e)]
            return record_firings(automation, entry.trigger, firings, wire)
        row = TriggerState.objects.select_for_update().filter(automation=automation).first()
        if row is None:
            row = TriggerState.objects.create(automation=automation, state=core.new_state())
        state = row.state or core.new_state()
        firings = [f for e in events for f in core.on_event(entry.trigger, state, e)]
        _save_state(row, entry.trigger, state)
        return record_firings(automation, entry.trigger, firings, wire)


def _save_state(row: TriggerState, trigger: Trigger, state: dict) -> None:
    due = core.next_due(trigger, state)
    row.state = state
    row.next_due = None if due is None else datetime.fromtimestamp(max(due, 0), dt_timezone.utc)
    row.save(update_fields=["state", "next_due", "updated"])


def tick(now: datetime | None = None) -> list[Firing]:
    """Close the proactive windows due by `now` (rows other processes hold are skipped)."""
    now = now or timezone.now()
    fired = []
    due = TriggerState.objects.filter(next_due__lte=now, automation__enabled=True)
    # A read first: on SQLite every transaction takes the write lock (IMMEDIATE), and the ticker
    # runs every second.
    if not due.exists():
        return fired
    with transaction.atomic():
        rows = list(
            TriggerState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(next_due__lte=now, automation__enabled=True)
            .select_related("automation")
            .order_by("next_due")[:TICK_BATCH]
        )
        for row in rows:
            try:
                trigger, _ = parse_trigger(row.automation.trigger)
                state = row.state or core.new_state()
                with transaction.atomic():
                    firings = core.on_tick(trigger, state, now.timestamp())
                    _save_state(row, trigger, state)
                    fired += record_firings(row.automation, trigger, firings, {})
            except Exception:
                log.exception("automation %s: tick failed", row.automation_id)
    return fired


def record_firings(automation: Automation, trigger: Trigger, firings: list[core.Firing], wire: dict) -> list[Firing]:
    """Store the firings, their prefect.automation.triggered/.resolved events (one ingest for
    all of them) and their action runs, inside the caller's transaction, so a rolled-back
    evaluation leaves no trace."""
    if not firings:
        return []
    events: list = []
    rows = [record_firing(automation, trigger, f, wire, events) for f in firings]
    ingest(events)
    return rows


def record_firing(automation: Automation, trigger: Trigger, firing: core.Firing, wire: dict, events: list) -> Firing:
    """One firing's rows; its event is appended to `events` for the caller to ingest."""
    now = timezone.now()
    slim = firing.event
    triggering = None
    if slim is not None:
        triggering = wire.get(slim["id"]) or full_event(slim)
    posture = trigger.posture if isinstance(trigger, EventTrigger) else "Reactive"
    event_id = uuid.uuid4()
    raw = {
        "id": str(event_id),
        "occurred": iso(now),
        "event": f"prefect.automation.{firing.kind}",
        "resource": {
            RESOURCE_ID: automation.resource_id,
            "prefect.resource.name": automation.name,
            "prefect.posture": posture,
        },
        "related": (
            [{RESOURCE_ID: f"prefect.event.{slim['id']}", RESOURCE_ROLE: "triggering-event"}] if slim else []
        ),
        "payload": {"triggering_labels": firing.labels, "triggering_event": triggering},
    }
    event, problems = validate_event(raw)
    if problems:  # a triggering event too large to copy: keep the link, drop the copy
        raw["payload"]["triggering_event"] = slim
        event, problems = validate_event(raw)
    events.append(event)
    row = Firing.objects.create(
        automation=automation,
        kind=firing.kind,
        at=now,
        triggering_event_id=slim["id"] if slim else None,
        triggering_event=slim,
        labels=firing.labels,
        event_id=event_id,
    )
    Automation.objects.filter(pk=automation.pk).update(last_fired=now)
    actions = (
        automation.actions + automation.actions_on_trigger if firing.kind == Firing.TRIGGERED else automation.actions_on_resolve
    )
    ActionRun.objects.bulk_create(
        [ActionRun(firing=row, automation=automation, index=i, action=a, next_attempt=now) for i, a in enumerate(actions)]
    )
    if actions:
        from . import service

        transaction.on_commit(service.wake_actions)
    return row
