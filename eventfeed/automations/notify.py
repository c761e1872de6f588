"""Notifications: stored, then pushed to every open page of a signed-in user."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.urls import reverse

from eventfeed.events.wire import iso

from .models import Notification

log = logging.getLogger(__name__)

NOTIFICATIONS_GROUP = "notifications"


def notify(automation, firing, subject: str, body: str) -> Notification:
    note = Notification.objects.create(automation=automation, firing=firing, subject=subject[:500], body=body)
    transaction.on_commit(lambda: push(note))
    return note


def as_message(note: Notification) -> dict:
    return {
        "id": str(note.id),
        "subject": note.subject,
        # The toast heads with the automation's name, not its id; None once it is deleted.
        "automation": note.automation.name if note.automation_id else None,
        "body": note.body,
        "created": iso(note.created),
        "automation_url": reverse("automation-detail", args=[note.automation_id]) if note.automation_id else None,
        "event_url": reverse("event-detail", args=[note.firing.event_id]) if note.firing_id else None,
    }


def push(note: Notification) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(NOTIFICATIONS_GROUP, {"type": "notification.created", "notification": as_message(note)})
    except Exception:
        # Stored already: the notifications page shows it even if no toast does.
        log.exception("could not push notification %s", note.id)
