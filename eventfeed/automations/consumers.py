"""`/ws/notifications`: every open page of a signed-in user receives automation notifications."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .notify import NOTIFICATIONS_GROUP


class NotificationsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(NOTIFICATIONS_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(NOTIFICATIONS_GROUP, self.channel_name)

    async def notification_created(self, message: dict) -> None:
        await self.send_json({"type": "notification", **message["notification"]})
