"""`/ws/notifications`: toasts for signed-in users only."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from eventfeed.automations.consumers import NotificationsConsumer
from eventfeed.automations.models import Notification
from eventfeed.automations.notify import push


def communicator(user) -> WebsocketCommunicator:
    c = WebsocketCommunicator(NotificationsConsumer.as_asgi(), "/ws/notifications")
    c.scope["user"] = user
    return c


@pytest.mark.django_db(transaction=True)
async def test_it_pushes_a_stored_notification_to_a_signed_in_page(django_user_model):
    user = await database_sync_to_async(django_user_model.objects.create_user)("carol", password="pw-carol-123")
    c = communicator(user)
    connected, _ = await c.connect()
    try:
        assert connected
        note = await database_sync_to_async(Notification.objects.create)(subject="Shipped", body="acme.order.1")
        await database_sync_to_async(push)(note)
        message = await c.receive_json_from(timeout=2)
        assert message["type"] == "notification" and message["subject"] == "Shipped" and message["id"] == str(note.id)
        assert message["automation"] is None  # no automation (deleted): the toast says "Notification"
    finally:
        await c.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_it_names_the_automation_and_sends_the_time_as_utc_with_z(django_user_model):
    from eventfeed.automations.models import Automation

    user = await database_sync_to_async(django_user_model.objects.create_user)("dave", password="pw-dave-123")
    automation = await database_sync_to_async(Automation.objects.create)(name="Orders shipped", trigger={}, actions=[])
    c = communicator(user)
    connected, _ = await c.connect()
    try:
        assert connected
        note = await database_sync_to_async(Notification.objects.create)(automation=automation, subject="Shipped", body="")
        await database_sync_to_async(push)(note)
        message = await c.receive_json_from(timeout=2)
        # The page formats the time in the top bar's zone; it gets the automation's name, not its id.
        assert message["automation"] == "Orders shipped"
        assert message["created"].endswith("Z") and "+00:00" not in message["created"]
        assert message["automation_url"] == f"/automations/{automation.id}/" and message["event_url"] is None
    finally:
        await c.disconnect()


# Channels closes stale connections before every message, so even a refused socket touches the
# database connection of the thread that an earlier test may have left open.
@pytest.mark.django_db
async def test_it_refuses_an_anonymous_socket():
    c = communicator(AnonymousUser())
    connected, code = await c.connect()
    try:
        assert not connected and code == 4401
    finally:
        await c.disconnect()
