"""The channel layers: in-process for the laptop default and one-process deployments, Redis
(with exact JSON messages) for more."""

from __future__ import annotations

import asyncio
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.serializers import BaseMessageSerializer, registry

from eventfeed.events import jsoncodec


class InProcessChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer without its deep copy of every message for every receiver.

    The copy imitates a network layer's serialization. Ingest publishes batches of up to 200
    events to every reader in the process (the live hub, the automation evaluator), and the
    copies alone cost about a seventh of the server's CPU at full ingest speed. The readers of
    this project never modify a message they receive; the message's own dict is still copied,
    so a receiver cannot change what the next one sees at the top level.
    """

    async def send(self, channel, message):
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait((time.time() + self.expiry, dict(message)))
        except asyncio.queues.QueueFull:
            raise ChannelFull(channel)


class ExactJsonSerializer(BaseMessageSerializer):
    """Messages as JSON through jsoncodec (msgspec). channels-redis' default, msgpack, refuses
    integers beyond 64 bits: an event carrying one in its payload was stored and never published."""

    def as_bytes(self, message, *args, **kwargs) -> bytes:
        return jsoncodec.dumps(message).encode()

    from_bytes = staticmethod(jsoncodec.loads)


registry.register_serializer("exact-json", ExactJsonSerializer)


class ExactRedisChannelLayer(RedisChannelLayer):
    """channels-redis with ExactJsonSerializer."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("serializer_format", "exact-json")
        super().__init__(*args, **kwargs)


async def receive(layer, channel: str) -> dict:
    """`layer.receive(channel)`, cancelled at once when its caller is.

    channels-redis can turn a cancelled receive into another error, or take the cancellation in
    and go on waiting for a message: a reader that retried on the one, or whoever awaits the
    reader's end after the other, would wait for ever (a server that never stops). The receive
    runs shielded, and a cancellation leaves it cancelled behind, unawaited.
    """
    inner = asyncio.ensure_future(layer.receive(channel))
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.cancel()
        raise
    except Exception:
        if asyncio.current_task().cancelling():
            raise asyncio.CancelledError from None
        raise
