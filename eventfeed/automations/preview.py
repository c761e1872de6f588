"""The editor's preview: the draft trigger replayed over the stored events of a recent range
(replay.py), as a timeline of what would have fired, when and for which bucket."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse

from eventfeed.events.filters import EventFilter

from .replay import replay
from .triggers import Trigger

RANGES = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
# A draft is checked as it is typed: past this many stored candidates the preview says it stopped.
MAX_EVENTS = 200_000
SHOWN = 50


def preview(trigger: Trigger, range_key: str, now: datetime) -> dict:
    result = replay(trigger, EventFilter(since=now - RANGES[range_key], until=now), now=now, max_events=MAX_EVENTS)
    return {
        "range": range_key,
        "matched": result["matched"],
        "fired": result["fired"],
        "resolved": result["resolved"],
        "capped": result["capped"],
        "timeline": [
            {**entry, "url": reverse("event-detail", args=[entry["event"]["id"]]) if entry["event"] else None}
            for entry in result["timeline"][:SHOWN]
        ],
    }
