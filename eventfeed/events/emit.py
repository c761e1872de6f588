"""The one way the application itself emits an event (automation firings and changes, action
runs, audit records, webhook failures): validated by the same gate as a producer's event, stored
by the one ingest path, published by it once committed.

An internal event is part of the change it reports, so it is stored in the caller's transaction:
a rolled-back change leaves no event behind, a committed one always has its event, and nobody
downstream (live feeds, /out subscribers, automations) hears of either before the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from .ingest import ingest
from .schema import CleanEvent, Problem, validate_event
from .wire import iso


class InvalidEvent(ValueError):
    """The event to emit broke a rule of the event model (a payload too large, a bad label)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.rule}" for p in problems))


def internal_event(event_name: str, resource: dict[str, str], related: Iterable[dict[str, str]] = (),
                   payload: dict[str, Any] | None = None, *, id: uuid.UUID | None = None,
                   occurred: datetime | None = None) -> CleanEvent:
    """A validated event, not stored yet: for a caller that emits a batch with emit_all()."""
    raw = {
        "id": str(id or uuid.uuid4()),
        "occurred": iso(occurred or timezone.now()),
        "event": event_name,
        "resource": resource,
        "related": list(related),
        "payload": payload or {},
    }
    event, problems = validate_event(raw)
    if problems:
        raise InvalidEvent(problems)
    return event


def emit(event_name: str, resource: dict[str, str], related: Iterable[dict[str, str]] = (),
         payload: dict[str, Any] | None = None, *, id: uuid.UUID | None = None,
         occurred: datetime | None = None) -> CleanEvent:
    """Store one internal event in the caller's transaction; published once it commits.
    Raises InvalidEvent, storing nothing, when the event breaks a rule."""
    event = internal_event(event_name, resource, related, payload, id=id, occurred=occurred)
    emit_all([event])
    return event


def emit_all(events: Sequence[CleanEvent]) -> None:
    """Store events made by internal_event(), all or nothing, through the one ingest path."""
    if events:
        ingest(events)
