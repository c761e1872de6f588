"""Live evaluation: events from the channel layer and clock ticks through the core, with the
state in the database, and firings recorded as events and action runs.

Cheap per event, because the evaluator sees every stored event:

- the enabled automations are indexed by the event names their triggers look at, and the
  candidates for a name are worked out once (a deployment has a few hundred names), so an
  event meets only the triggers that name it;
- each candidate checks the event's resources on the wire dict, with matchers compiled once
  per trigger; only the events that some trigger covers are parsed;
- the database work is per published batch, not per event or per automation: one claim of the
  covered events, then one transaction that locks the state rows of every automation the batch
  changes (in id order, so evaluators never deadlock), counts in Python, writes the states back
  in one statement and records every firing with bulk inserts and a single ingest.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from eventfeed.events.filters import Matchable
from eventfeed.events.patterns import _kind, glob_match
from eventfeed.events.emit import InvalidEvent, emit_all, internal_event
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE
from eventfeed.events.wire import iso, stored

from . import core, metrics, records, store, wakeup
from .models import ActionRun, Automation, CatchUpMark, EvaluatedEvent, EvaluationRecord, Firing, TriggerState
from .triggers import REACTIVE, EventTrigger, Trigger, parse_trigger

log = logging.getLogger(__name__)

TICK_BATCH = 50
# Longer than any channel-layer redelivery (channels-redis expires messages after 60 s).
CLAIMS_KEPT = timedelta(hours=1)
# Distinct event names whose candidates are remembered; past it the memo starts again (a
# producer inventing names must not grow the process without bound).
NAMES_KEPT = 10_000


@dataclass(eq=False)
class Entry:
    automation_id: uuid.UUID
    trigger: Trigger
    # A lone reactive trigger with threshold 1 and no `after` keeps no state: it fires per
    # matching event without taking the state row's lock.
    stateless: bool
    # When the automation was last created, changed or enabled (Automation.updated): the
    # catch-up does not hand it events that arrived before (catchup.py).
    since: datetime | None = None
    # Its own events, which it never evaluates (no feedback loop).
    resource_id: str = field(init=False)

    def __post_init__(self):
        self.resource_id = f"prefect.automation.{self.automation_id}"


@dataclass
class Candidates:
    """The event triggers that look at one event name, filed by the exact resource ids they
    require (`EventTrigger.required_ids`): an event meets the ones under its own ids and the
    ones that require no id."""

    anywhere: tuple[tuple[Entry, EventTrigger], ...] = ()
    by_resource: dict[str, tuple[tuple[Entry, EventTrigger], ...]] = field(default_factory=dict)
    by_related: dict[str, tuple[tuple[Entry, EventTrigger], ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.anywhere or self.by_resource or self.by_related)

    def for_event(self, resource: dict, related: list) -> list[tuple[Entry, EventTrigger]]:
        found = list(self.anywhere)
        if self.by_resource:
            found += self.by_resource.get(resource.get(RESOURCE_ID), ())
        if self.by_related:
            by_related = self.by_related
            for r in related:
                found += by_related.get(r.get(RESOURCE_ID), ())
        return found


class TriggerIndex:
    """Enabled automations by the event-name patterns of their triggers."""

    def __init__(self, automations):
        self.entries: dict[uuid.UUID, Entry] = {}
        self.exact: dict[str, list[tuple[Entry, EventTrigger]]] = defaultdict(list)
        self.patterns: list[tuple[str, Entry, EventTrigger]] = []
        self._by_name: dict[str, Candidates] = {}
        for a in automations:
            try:
                trigger, _ = parse_trigger(a.trigger)
            except ValueError:
                log.warning("automation %s has an invalid trigger; it is not evaluated", a.id)
                continue
            stateless = isinstance(trigger, EventTrigger) and trigger.posture == REACTIVE and (
                trigger.threshold == 1 and not trigger.after
            )
            entry = self.entries[a.id] = Entry(a.id, trigger, stateless, a.updated)
            for t in trigger.event_triggers:
                for pattern in t.patterns:
                    if _kind(pattern) == "exact":
                        self.exact[pattern].append((entry, t))
                    else:
                        self.patterns.append((pattern, entry, t))

    def candidates(self, name: str) -> Candidates:
        """The event triggers (with their automations) that look at events of this name."""
        found = self._by_name.get(name)
        if found is None:
            pairs = self.exact.get(name, []) + [(e, t) for p, e, t in self.patterns if glob_match(p, name)]
            anywhere: list = []
            filed: dict[str, dict[str, list]] = {"resource": defaultdict(list), "related": defaultdict(list)}
            seen = set()
            for entry, t in pairs:
                if id(t) in seen:  # a trigger naming the event twice (after and expect)
                    continue
                seen.add(id(t))
                if t.required_ids is None:
                    anywhere.append((entry, t))
                else:
                    scope, ids = t.required_ids
                    for rid in ids:
                        filed[scope][rid].append((entry, t))
            found = Candidates(
                tuple(anywhere),
                {rid: tuple(ts) for rid, ts in filed["resource"].items()},
                {rid: tuple(ts) for rid, ts in filed["related"].items()},
            )
            if len(self._by_name) >= NAMES_KEPT:
                self._by_name.clear()
            self._by_name[name] = found
        return found


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


def evaluate(events: list[dict], *, arrived: dict[str, datetime] | None = None) -> list[Firing]:
    """Evaluate events as published by ingest (Prefect-shaped dicts). Returns the firings.

    `arrived` (event id -> received) is given by the catch-up from the store: an automation
    created or changed after an event arrived is not handed that event."""
    index = current_index()
    if not index.entries:
        return []
    if len({data["id"] for data in events}) < len(events):
        # A message the channel layer delivered twice into one batch: each event once.
        events = list({data["id"]: data for data in events}.values())
    covered: dict[Entry, list[dict]] = defaultdict(list)
    # (automation, event) pairs that reached an automation through the index but that its
    # trigger does not cover: recorded as misses (records.py).
    missed: list[tuple] = []
    recording = records.enabled()
    for data in events:
        candidates = index.candidates(data["event"])
        if not candidates:
            continue
        resource, related = data["resource"], data.get("related") or []
        own = resource.get(RESOURCE_ID)
        done = set()
        tried = set()
        for entry, t in candidates.for_event(resource, related):
            # An automation never reacts to the events it emitted itself (no feedback loop).
            if entry in done or own == entry.resource_id:
                continue
            if arrived is not None and entry.since is not None and arrived[data["id"]] < entry.since:
                continue
            if t.covers_resources(resource, related):
                done.add(entry)
                covered[entry].append(data)
            elif recording:
                tried.add(entry)
        if tried:
            missed += [(entry.automation_id, data, EvaluationRecord.MISSED, None) for entry in tried - done]
    if not covered and not missed:
        return []
    wire = {data["id"]: data for matched in covered.values() for data in matched}
    parsed = {key: Matchable.from_wire(data) for key, data in wire.items()}
    todo = {entry: [parsed[data["id"]] for data in matched] for entry, matched in covered.items()}
    return _evaluate_batch(todo, wire, missed if recording else None)


def claim(ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Claim these events for evaluation; returns the ones no other evaluator had claimed."""
    if not ids:
        return set()
    table = EvaluatedEvent._meta.db_table
    field = EvaluatedEvent._meta.get_field("event_id")
    at = EvaluatedEvent._meta.get_field("at").get_db_prep_value(timezone.now(), connection)
    # In id order: evaluators claiming overlapping batches take the rows in the same order.
    rows = [(field.get_db_prep_value(i, connection), at) for i in sorted(ids)]
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
    # Never a claim the catch-up (catchup.py) may still meet, or it would evaluate that event
    # again: those of events stored after its mark (a claim is taken after its event arrived; a
    # minute's margin for clocks).
    mark = CatchUpMark.objects.filter(pk=1).values_list("received", flat=True).first()
    before = now - CLAIMS_KEPT if mark is None else min(now - CLAIMS_KEPT, mark - timedelta(minutes=1))
    EvaluatedEvent.objects.filter(at__lt=before).delete()
    records.forget(now)


def _evaluate_batch(todo: dict[Entry, list[Matchable]], wire: dict, recorded: list | None = None) -> list[Firing]:
    """Count the batch for every automation it touches, in one transaction. The states are read
    and written as bare (id, JSON) rows: model instances of every automation for every batch
    cost more than the counting. Automations are loaded only when they fire."""
    now = timezone.now()
    with transaction.atomic():
        # Claimed in the same transaction: an evaluator that fails leaves the events to the
        # next reader, and one that takes a batch another is still evaluating waits for it,
        # then skips what it evaluated.
        # A recorded miss is claimed too, so that an event evaluated twice (a redelivery, the
        # catch-up behind the live path) is recorded once.
        missed_ids = {uuid.UUID(row[1]["id"]) for row in recorded} if recorded else set()
        fresh = claim({e.id for events in todo.values() for e in events} | missed_ids)
        if recorded:
            recorded[:] = [row for row in recorded if uuid.UUID(row[1]["id"]) in fresh]
        todo = {entry: [e for e in events if e.id in fresh] for entry, events in todo.items()}
        todo = {entry: sorted(events, key=lambda e: (e.occurred, str(e.id))) for entry, events in todo.items() if events}
        stateful = [entry for entry in todo if not entry.stateless]
        states = _lock_states(sorted(entry.automation_id for entry in stateful))
        changed: list[tuple[uuid.UUID, dict, datetime | None]] = []
        fired: list[tuple[Entry, list[core.Firing]]] = []
        for entry, events in todo.items():
            try:
                if entry.stateless:
                    state = core.new_state()
                else:
                    if entry.automation_id not in states:
                        states.update(_missing_state(entry.automation_id))
                    if entry.automation_id not in states:
                        continue  # disabled since the index was built
                    state = states[entry.automation_id] or core.new_state()
                if recorded is None:
                    firings = [f for e in events for f in core.on_event(entry.trigger, state, e)]
                else:
                    firings, rows = [], []
                    for e in events:
                        these = core.on_event(entry.trigger, state, e)
                        firings += these
                        rows.append((entry.automation_id, wire[str(e.id)], *records.hit(entry.trigger, e, state, these)))
                    recorded += rows
                if not entry.stateless:
                    changed.append((entry.automation_id, state, _due(entry.trigger, state)))
            except Exception:
                # One broken automation must not stop the others; on an exception its state is
                # not written back.
                log.exception("automation %s: evaluation failed", entry.automation_id)
                continue
            if firings:
                fired.append((entry, firings))
        _write_states(changed, now)
        if recorded:
            records.write(recorded, now)
        if not fired:
            return []
        automations = Automation.objects.in_bulk([entry.automation_id for entry, _ in fired])
        return record_many(
            [(automations[entry.automation_id], entry.trigger, firings) for entry, firings in fired
             if entry.automation_id in automations and automations[entry.automation_id].enabled],
            wire,
        )


def _db(field_name: str, value):
    field = TriggerState._meta.get_field(field_name)
    return field.get_db_prep_value(value, connection)


def _lock_states(ids: list[uuid.UUID]) -> dict[uuid.UUID, dict | None]:
    """The states of these automations that are enabled, their rows locked until the commit
    (taken in id order, so two evaluators never wait on each other in a cycle)."""
    if not ids:
        return {}
    state_table, automation_table = TriggerState._meta.db_table, Automation._meta.db_table
    lock = " FOR UPDATE OF s" if connection.features.has_select_for_update_of else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.automation_id, s.state FROM {state_table} s JOIN {automation_table} a ON a.id = s.automation_id "
            f"WHERE s.automation_id IN ({', '.join(['%s'] * len(ids))}) AND a.enabled ORDER BY s.automation_id{lock}",
            [_db("automation", i) for i in ids],
        )
        rows = cursor.fetchall()
    out = {}
    for automation_id, state in rows:
        out[uuid.UUID(str(automation_id))] = json.loads(state) if isinstance(state, (str, bytes)) else state
    return out


def _missing_state(automation_id: uuid.UUID) -> dict[uuid.UUID, dict]:
    """The state of an enabled automation that has no row yet (nothing when it is disabled)."""
    automation = Automation.objects.filter(pk=automation_id, enabled=True).first()
    if automation is None:
        return {}
    row, _ = TriggerState.objects.select_for_update().get_or_create(automation=automation, defaults={"state": core.new_state()})
    return {automation_id: row.state}


def _write_states(rows: list[tuple[uuid.UUID, dict, datetime | None]], now: datetime) -> None:
    """All the states in one statement: Django's bulk_update builds a CASE per row and column,
    which cost more than the counting itself."""
    if not rows:
        return
    table = TriggerState._meta.db_table
    values = [
        (_db("automation", automation_id), json.dumps(state), _db("next_due", due), _db("updated", now))
        for automation_id, state, due in rows
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS t SET state = v.state::jsonb, next_due = v.next_due::timestamptz, "
                f"updated = v.updated::timestamptz FROM (VALUES {', '.join(['(%s, %s, %s, %s)'] * len(values))}) "
                "AS v(id, state, next_due, updated) WHERE t.automation_id = v.id::uuid",
                [x for row in values for x in row],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET state = %s, next_due = %s, updated = %s WHERE automation_id = %s",
                [(state, due, updated, automation_id) for automation_id, state, due, updated in values],
            )


def _due(trigger: Trigger, state: dict) -> datetime | None:
    due = core.next_due(trigger, state)
    return None if due is None else datetime.fromtimestamp(max(due, 0), dt_timezone.utc)


def _save_state(row: TriggerState, trigger: Trigger, state: dict) -> None:
    row.state = state
    row.next_due = _due(trigger, state)
    row.save(update_fields=["state", "next_due", "updated"])


def seconds_to_next_due(now: datetime | None = None) -> float | None:
    """How long until the soonest deadline of an enabled automation (the ticker's sleep)."""
    due = (TriggerState.objects.filter(next_due__isnull=False, automation__enabled=True)
           .order_by("next_due").values_list("next_due", flat=True).first())
    return None if due is None else (due - (now or timezone.now())).total_seconds()


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
                    if trigger.type == "metric":
                        firings = metrics.tick(trigger, state, now)
                    else:
                        firings = core.on_tick(trigger, state, now.timestamp())
                    _save_state(row, trigger, state)
                    fired += record_firings(row.automation, trigger, firings, {})
            except Exception:
                log.exception("automation %s: tick failed", row.automation_id)
    return fired


def record_firings(automation: Automation, trigger: Trigger, firings: list[core.Firing], wire: dict, *,
                   replayed: bool = False) -> list[Firing]:
    return record_many([(automation, trigger, firings)], wire, replayed=replayed)


def record_many(groups: list[tuple[Automation, Trigger, list[core.Firing]]], wire: dict, *,
                replayed: bool = False) -> list[Firing]:
    """Store the firings of (automation, trigger, firings) groups, their
    prefect.automation.triggered/.resolved events (one ingest for all of them) and their action
    runs, inside the caller's transaction, so a rolled-back evaluation leaves no trace."""
    now = timezone.now()
    events: list = []
    rows: list[Firing] = []
    runs: list[ActionRun] = []
    fired: set = set()
    for automation, trigger, firings in groups:
        for firing in firings:
            row = record_firing(automation, trigger, firing, wire, events, now, replayed=replayed)
            rows.append(row)
            fired.add(automation.pk)
            actions = (
                automation.actions + automation.actions_on_trigger
                if firing.kind == Firing.TRIGGERED
                else automation.actions_on_resolve
            )
            runs += [ActionRun(firing=row, automation=automation, index=i, action=a, next_attempt=now) for i, a in enumerate(actions)]
    if not rows:
        return []
    Firing.objects.bulk_create(rows)
    ActionRun.objects.bulk_create(runs)
    Automation.objects.filter(pk__in=fired).update(last_fired=now)
    emit_all(events)
    if runs:
        transaction.on_commit(wakeup.wake_actions)
    return rows


def record_firing(automation: Automation, trigger: Trigger, firing: core.Firing, wire: dict, events: list,
                  now: datetime, *, replayed: bool = False) -> Firing:
    """One firing's row (not saved yet); its event is appended to `events` for the caller to ingest."""
    slim = firing.event
    triggering = None
    if slim is not None:
        triggering = wire.get(slim["id"]) or stored(slim["id"]) or slim
    posture = getattr(trigger, "posture", "Reactive")
    name = f"prefect.automation.{firing.kind}"
    resource = {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name, "prefect.posture": posture}
    related = [{RESOURCE_ID: f"prefect.event.{slim['id']}", RESOURCE_ROLE: "triggering-event"}] if slim else []
    payload = {"triggering_labels": firing.labels, "triggering_event": triggering}
    if replayed:
        # A replay fires now for what would have fired then.
        payload.update(replayed=True, replayed_at=iso(datetime.fromtimestamp(firing.at, dt_timezone.utc)))
    try:
        event = internal_event(name, resource, related, payload, occurred=now)
    except InvalidEvent:  # a triggering event too large to copy: keep the link, drop the copy
        event = internal_event(name, resource, related, dict(payload, triggering_event=slim), occurred=now)
    events.append(event)
    return Firing(
        automation=automation,
        kind=firing.kind,
        at=now,
        triggering_event_id=slim["id"] if slim else None,
        triggering_event=slim,
        labels=firing.labels,
        event_id=event.id,
        replayed=replayed,
    )
