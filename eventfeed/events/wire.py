"""An event as it leaves the system: Prefect's JSON, times in UTC with `Z`, integers exact.

The read API, /api/events/out (live and backfill), the live rows, the templates, the automations
and the demo all shape an event here and nowhere else. A producer may send any UTC offset; an
event read through one door must read the same through every other, and the browser sorts rows
by the text of `occurred`, so the offset is never passed on.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from . import jsoncodec


def iso(moment: datetime) -> str:
    """A time as every output writes it: ISO 8601 in UTC, `Z` for the offset."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def wire(event) -> dict:
    """An event (stored, or validated and about to be) in Prefect's ReceivedEvent shape.

    Labels and payload are passed as they are: JSON writers in Python keep integers of any size
    exact (jsoncodec, json, json_script), so a 20-digit id in a payload survives every output.
    """
    follows = event.follows
    received = event.received
    return {
        "occurred": iso(event.occurred),
        "event": event.event,
        "resource": event.resource,
        "related": event.related,
        "payload": event.payload,
        "id": str(event.id),
        "follows": str(follows) if follows else None,
        "received": iso(received) if received is not None else None,
    }


def dumps(event) -> str:
    """The event's wire shape as compact JSON text."""
    return jsoncodec.dumps(wire(event))


def slim(event) -> dict:
    """The part of the wire shape an automation's state keeps of a triggering event (no payload:
    a state row holds many of them)."""
    return {"id": str(event.id), "occurred": iso(event.occurred), "event": event.event,
            "resource": event.resource, "related": event.related}


def stored(event_id) -> dict | None:
    """The stored event with this id in wire shape, or None (no such event, or not an id)."""
    from .models import Event

    try:
        pk = event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))
    except ValueError:
        return None
    event = Event.objects.filter(pk=pk).first()
    return wire(event) if event is not None else None
