"""Evaluation records: what each automation did with each event that reached it.

Cheap by design, because the evaluator writes them for every batch: a row is a handful of short
values built from the wire dict the evaluator already holds (no datetime formatting, no model
instances), all rows of a batch go in one COPY (PostgreSQL) inside the batch's transaction, and a
miss stores no explanation: the pages rebuild it from the stored event with explain.py.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from eventfeed.events.filters import Matchable
from eventfeed.events.models import Event
from eventfeed.events.problems import parse_time
from eventfeed.events.wire import wire

from . import core
from .explain import at as iso_at, name_checks, resource_checks
from .models import Automation, EvaluationRecord
from .triggers import CompositeTrigger, Trigger, TriggerError, parse_trigger

COLUMNS = "automation_id, event_id, event, occurred, at, outcome, detail"


def enabled() -> bool:
    return settings.EVENTFEED_EVALUATION_RECORDS


def hit(trigger: Trigger, event: Matchable, state: dict, firings: list[core.Firing]) -> tuple[str, dict | None]:
    """(outcome, detail) of an event the trigger covered, read from the state after it."""
    if any(f.kind == "triggered" for f in firings):
        outcome = EvaluationRecord.FIRED
    elif firings:
        outcome = EvaluationRecord.RESOLVED
    else:
        outcome = EvaluationRecord.COUNTED
    if isinstance(trigger, CompositeTrigger):
        fired = {path: len(children) for path, children in state["c"].items()}
        return outcome, {"children": fired} if fired else None
    key = trigger.bucket_key(event)
    b = state["b"].get(core._bid(trigger, key))
    detail = {"th": trigger.threshold}
    if trigger.for_each:
        detail["key"] = dict(zip(trigger.for_each, key))
    if b is not None:
        detail.update(n=max(b["n"], 0), s=b["s"], e=b["e"])
    return outcome, detail


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write(rows: list[tuple[uuid.UUID, dict, str, str, dict | None]], now: datetime) -> None:
    """rows: (automation id, wire event, evaluated-at ISO, outcome, detail)."""
    if not rows:
        return
    table = EvaluationRecord._meta.db_table
    at = now.isoformat()
    if connection.vendor == "postgresql":
        text = "".join(
            f"{automation_id}\t{data['id']}\t{_esc(data['event'])}\t{data['occurred']}\t{at}\t{outcome}\t"
            f"{_esc(json.dumps(detail)) if detail is not None else chr(92) + 'N'}\n"
            for automation_id, data, outcome, detail in rows
        )
        with connection.cursor() as wrapper, connection.wrap_database_errors:
            with wrapper.cursor.copy(f"COPY {table} ({COLUMNS}) FROM STDIN") as copy:
                copy.write(text)
        return
    field = EvaluationRecord._meta.get_field
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (field("automation").get_db_prep_value(automation_id, connection),
                 field("event_id").get_db_prep_value(uuid.UUID(data["id"]), connection), data["event"],
                 field("occurred").get_db_prep_value(parse_time(data["occurred"]), connection),
                 field("at").get_db_prep_value(now, connection), outcome,
                 json.dumps(detail) if detail is not None else None)
                for automation_id, data, outcome, detail in rows
            ],
        )


def forget(now: datetime) -> int:
    """Delete the records older than the kept hours, automation by automation along the primary
    key. The ticker calls it every minute, so each delete takes about a minute of rows."""
    cutoff = now - timedelta(hours=settings.EVENTFEED_EVALUATIONS_KEPT_HOURS)
    deleted = 0
    for automation_id in Automation.objects.values_list("id", flat=True):
        deleted += EvaluationRecord.objects.filter(automation_id=automation_id, at__lt=cutoff).delete()[0]
    return deleted


# -- reading ------------------------------------------------------------------------------------

def _why_missed(trigger: Trigger, event: Event | None) -> list[str]:
    if event is None:
        return ["the event is no longer stored"]
    m = Matchable.from_wire(wire(event))
    out = []
    for t in trigger.event_triggers:
        checks = name_checks(t, m.event) + resource_checks(t, m.resource, m.related)
        failed = [c["says"] for c in checks if not c["ok"]]
        prefix = f"{t.path}: " if isinstance(trigger, CompositeTrigger) else ""
        out += [prefix + s for s in failed]
    return out or ["it matches the trigger as it is now (the trigger was changed since)"]


def _summary(record: EvaluationRecord, trigger: Trigger | None, event: Event | None) -> dict:
    d = record.detail or {}
    if record.outcome == EvaluationRecord.MISSED:
        says = _why_missed(trigger, event) if trigger is not None else ["the trigger is not valid"]
    elif "children" in d:
        says = [f"{n} child firing(s) held by {path}" for path, n in d["children"].items()] or ["counted"]
    else:
        line = f"count {d['n']} of {d['th']}" if "n" in d else f"threshold {d.get('th')}; no bucket kept"
        if d.get("e"):
            line += f", window {iso_at(d['s'])} → {iso_at(d['e'])}"
        says = [line]
    return {"outcome": record.outcome, "key": d.get("key"), "says": says}


def _trigger(automation: Automation) -> Trigger | None:
    try:
        return parse_trigger(automation.trigger)[0]
    except TriggerError:
        return None


def for_automation(automation: Automation, limit: int = 50) -> list[dict]:
    records = list(EvaluationRecord.objects.filter(automation=automation).order_by("-at", "-event_id")[:limit])
    trigger = _trigger(automation)
    missed = [r.event_id for r in records if r.outcome == EvaluationRecord.MISSED]
    events = Event.objects.in_bulk(missed) if missed else {}
    return [{"record": r, **_summary(r, trigger, events.get(r.event_id))} for r in records]


def for_event(event: Event) -> list[dict]:
    """Which automations this event reached and what each did with it."""
    records = list(EvaluationRecord.objects.filter(event_id=event.id).select_related("automation").order_by("at", "automation_id"))
    return [{"record": r, "automation": r.automation, **_summary(r, _trigger(r.automation), event)} for r in records]
