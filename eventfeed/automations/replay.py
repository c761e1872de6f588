"""Replay: stored events (a time range or any EventFilter) through a trigger, oldest first, with
the live core and the clock ticking exactly when windows close. A dry run returns the timeline
(what would have fired, when, for which bucket); a real run also records the firings, marked
replayed, and their actions run.

Fast enough for millions of events: the database does the coarse matching (the filter and each
event trigger's names and resources), rows stream from a server-side cursor as bare tuples
(no model instances, JSON decoded by msgspec), and only the columns the trigger reads are
fetched.
"""

from __future__ import annotations

import heapq
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone as dt_timezone

import msgspec
from django.db import connection, transaction
from django.utils import timezone

from eventfeed import audit
from eventfeed.events.filters import EventFilter, Matchable
from eventfeed.events.models import Event
from eventfeed.events.schema import RESOURCE_ID

from . import core, metrics
from .engine import record_firings
from .explain import at as iso_at
from .models import Automation
from .triggers import EventTrigger, Trigger, name_filter

TIMELINE = 1000
# A real replay runs actions now for every firing: past this many it is refused (narrow the filter).
MAX_REAL_FIRINGS = 100
CHUNK = 10_000

_decode = msgspec.json.Decoder().decode


class ReplayRefused(Exception):
    pass


def _trigger_filter(t: EventTrigger, base: EventFilter) -> EventFilter:
    """The user's filter narrowed by the trigger: its resources always, its event names when
    the filter names none (the core checks names and globs again)."""
    names = name_filter(t) if not (base.names or base.prefixes) else None
    out = replace(base, order="ASC", resources=base.resources + t.resource_filter.resources)
    if names is not None:
        out = replace(out, names=names["names"], prefixes=names["prefixes"])
    return out


def _stream(f: EventFilter, with_related: bool):
    """Matchable events of the filter, oldest first, once each."""
    columns = ["id", "occurred", "event", "resource"] + (["related"] if with_related else [])
    qs = f.queryset().values_list(*columns)
    epoch = connection.vendor == "postgresql"
    sql, params = qs.query.sql_with_params()
    last = None
    # Raw rows from a named (server-side) cursor: Django's JSONField would decode every row
    # through json.loads; msgspec is several times faster.
    connection.ensure_connection()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The JSON columns as text, decoded below.
            sql = _as_text(sql, with_related)
            raw = connection.connection.cursor(name=f"replay_{id(f)}")
            raw.itersize = CHUNK
            raw.execute(sql, params)
            rows = raw
        else:
            cursor.execute(sql, params)
            rows = iter(lambda: cursor.fetchmany(CHUNK), [])
            rows = (row for chunk in rows for row in chunk)
        for row in rows:
            event_id = row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(row[0])
            if event_id == last:  # a join on the resources table can repeat an event
                continue
            last = event_id
            occurred = row[1]
            if epoch:
                occurred = datetime.fromtimestamp(occurred, dt_timezone.utc)
            elif isinstance(occurred, str):
                occurred = datetime.fromisoformat(occurred)
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=dt_timezone.utc)
            resource = row[3]
            related = row[4] if with_related else []
            yield Matchable(
                id=event_id, occurred=occurred, event=row[2],
                resource=_decode(resource) if isinstance(resource, (str, bytes)) else resource,
                related=(_decode(related) if isinstance(related, (str, bytes)) else related) or [],
                payload={},
            )


def _as_text(sql: str, with_related: bool) -> str:
    """Select the JSON columns as text and `occurred` as epoch seconds (Django quotes the column
    names it selects): a float and msgspec cost a fraction of psycopg's datetime and JSON loaders."""
    table = Event._meta.db_table
    head, sep, tail = sql.partition(" FROM ")
    head = head.replace(f'"{table}"."occurred"', f'extract(epoch from "{table}"."occurred")::float8', 1)
    head = head.replace(f'"{table}"."resource"', f'"{table}"."resource"::text', 1)
    if with_related:
        head = head.replace(f'"{table}"."related"', f'"{table}"."related"::text', 1)
    return head + sep + tail


def events_for(trigger: Trigger, base: EventFilter):
    """The stored events the trigger's event triggers could count, oldest first, once each."""
    if trigger.type == "metric":
        yield from _stream(metrics.metric_filter(trigger, base), bool(trigger.match_related))
        return
    triggers = trigger.event_triggers
    with_related = any(t.match_related or any(label.startswith("related:") for label in t.for_each) for t in triggers)
    streams = [_stream(_trigger_filter(t, base), with_related) for t in triggers]
    if len(streams) == 1:
        yield from streams[0]
        return
    seen_last: set = set()
    last_at = None
    for event in heapq.merge(*streams, key=lambda e: (e.occurred, str(e.id))):
        if event.occurred != last_at:
            seen_last, last_at = set(), event.occurred
        if event.id in seen_last:
            continue
        seen_last.add(event.id)
        yield event


def _entry(f: core.Firing) -> dict:
    event = f.event or {}
    return {
        "at": iso_at(f.at),
        "kind": f.kind,
        "labels": f.labels,
        "event": {"id": event.get("id"), "event": event.get("event"), "occurred": event.get("occurred"),
                  "resource_id": (event.get("resource") or {}).get(RESOURCE_ID)} if f.event else None,
    }


def replay(trigger: Trigger, base: EventFilter, *, automation: Automation | None = None, run_actions: bool = False,
           now: datetime | None = None, max_events: int | None = None) -> dict:
    """Run the stored events of `base` through `trigger` from an empty state. With run_actions
    (an existing automation only), the firings are recorded as replayed and their actions run.
    With max_events, it stops reading there (and says so: "capped")."""
    now = now or timezone.now()
    started = time.monotonic()
    own = automation.resource_id if automation is not None else None
    counted = {"read": 0, "matched": 0, "capped": False}
    triggers = trigger.event_triggers
    metric = trigger if trigger.type == "metric" else None

    def events():
        for event in events_for(trigger, base):
            if max_events is not None and counted["read"] >= max_events:
                counted["capped"] = True
                return
            counted["read"] += 1
            if own is not None and event.resource.get(RESOURCE_ID) == own:
                continue  # the live engine never evaluates an automation's own events
            if metric is not None:
                counted["matched"] += metric.covers(event.event, event.resource, event.related)
            for t in triggers:
                if t.covers(event):
                    counted["matched"] += 1
                    break
            yield event

    start = (base.since or None)
    end = min(base.until, now) if base.until else now
    stream = events()
    first = next(stream, None)
    if first is None and start is None:
        firings: list[core.Firing] = []
    else:
        begin = start.timestamp() if start is not None else first.occurred.timestamp()

        def all_events():
            if first is not None:
                yield first
            yield from stream

        if metric is not None:
            firings = [core.Firing(f.kind, f.at, None, f.labels)
                       for f in metrics.replay_stream(metric, all_events(), begin, end.timestamp())]
        else:
            firings = core.simulate(trigger, all_events(), start=begin, end=end.timestamp())
    triggered = [f for f in firings if f.kind == "triggered"]
    out = {
        "events_read": counted["read"],
        "matched": counted["matched"],
        "capped": counted["capped"],
        "fired": len(triggered),
        "resolved": len(firings) - len(triggered),
        "timeline": [_entry(f) for f in firings[:TIMELINE]],
        "truncated": len(firings) > TIMELINE,
        "since": iso_at(start.timestamp()) if start is not None else None,
        "until": iso_at(end.timestamp()),
        "run_actions": run_actions,
    }
    if run_actions:
        if automation is None:
            raise ReplayRefused("only a saved automation can replay for real")
        if len(firings) > MAX_REAL_FIRINGS:
            raise ReplayRefused(f"it would fire {len(firings)} times; a real replay runs at most {MAX_REAL_FIRINGS} "
                                "firings' actions: narrow the filter")
        with transaction.atomic():
            rows = record_firings(automation, trigger, firings, {}, replayed=True)
            out["firing_ids"] = [str(r.id) for r in rows]
            _audit(automation, out)
    elif automation is not None:
        # A dry run changes nothing, but it reads the stored events through someone's automation.
        _audit(automation, out)
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


def _audit(automation: Automation, out: dict) -> None:
    audit.record("automation.replayed", {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name},
                 {key: out[key] for key in ("run_actions", "since", "until", "events_read", "fired", "resolved", "firing_ids")
                  if key in out})
