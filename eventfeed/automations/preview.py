"""The preview: how often a trigger would have fired over the stored events of a recent range,
computed with the live core over events the database pre-selects with the same filter."""

from __future__ import annotations

from datetime import datetime, timedelta

from eventfeed.events.filters import EventFilter, Matchable
from eventfeed.events.wire import wire

from .core import simulate
from .triggers import EventTrigger, Trigger, name_filter

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
MAX_EVENTS = 5000
SHOWN_FIRINGS = 5


def candidate_filter(t: EventTrigger, since: datetime, until: datetime) -> EventFilter:
    names = name_filter(t) or {}
    return EventFilter(
        since=since, until=until, order="ASC",
        resources=t.resource_filter.resources,
        **names,
    )


def candidates(trigger: Trigger, since: datetime, until: datetime) -> tuple[list[Matchable], bool]:
    """The stored events any of the trigger's event triggers could count, oldest first, and
    whether the cap cut them short."""
    found: dict = {}
    capped = False
    for t in trigger.event_triggers:
        rows = list(candidate_filter(t, since, until).queryset()[: MAX_EVENTS + 1])
        capped = capped or len(rows) > MAX_EVENTS
        for event in rows[:MAX_EVENTS]:
            found[event.id] = event
    events = sorted(found.values(), key=lambda e: (e.occurred, str(e.id)))
    return [Matchable.from_wire(wire(e)) for e in events], capped


def preview(trigger: Trigger, range_key: str, now: datetime) -> dict:
    since = now - RANGES[range_key]
    events, capped = candidates(trigger, since, now)
    matched = [e for e in events if any(t.covers(e) for t in trigger.event_triggers)]
    firings = [f for f in simulate(trigger, matched, start=since.timestamp(), end=now.timestamp()) if f.kind == "triggered"]
    names = {str(e.id): e for e in matched}
    return {
        "range": range_key,
        "matched": len(matched),
        "fired": len(firings),
        "capped": capped,
        "firings": [
            {
                "at": datetime.fromtimestamp(f.at, tz=now.tzinfo).isoformat(),
                "event_id": f.event["id"] if f.event else None,
                "event": f.event["event"] if f.event else None,
                "resource": f.event["resource"].get("prefect.resource.id") if f.event else None,
                "labels": f.labels,
                "url": f"/events/{f.event['id']}/" if f.event and f.event["id"] in names else None,
            }
            for f in firings[:SHOWN_FIRINGS]
        ],
    }


