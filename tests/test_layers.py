"""The in-process channel layer: the in-memory layer without a deep copy per receiver."""

from __future__ import annotations

import asyncio

import pytest
from channels.exceptions import ChannelFull

from eventfeed.layers import InProcessChannelLayer, receive


@pytest.mark.asyncio
async def test_it_delivers_a_group_message_to_every_member_without_copying_its_contents():
    layer = InProcessChannelLayer()
    a, b = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("events", a)
    await layer.group_add("events", b)
    events = [{"id": "1"}]
    await layer.group_send("events", {"type": "events.stored", "events": events})
    got_a, got_b = await layer.receive(a), await layer.receive(b)
    assert got_a == got_b == {"type": "events.stored", "events": events}
    assert got_a["events"] is events
    # The top level is each receiver's own.
    got_a["type"] = "changed"
    assert got_b["type"] == "events.stored"


@pytest.mark.asyncio
async def test_it_refuses_a_message_to_a_full_channel():
    layer = InProcessChannelLayer(capacity=1)
    await layer.send("worker", {"type": "x"})
    with pytest.raises(ChannelFull):
        await layer.send("worker", {"type": "x"})


class TurnsCancellationIntoAnError:
    """As channels-redis can: a cancelled receive raises something else."""

    async def receive(self, channel):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("connection closed while reading") from None


@pytest.mark.asyncio
async def test_it_keeps_a_cancelled_receive_a_cancellation():
    task = asyncio.ensure_future(receive(TurnsCancellationIntoAnError(), "c"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


class KeepsWaitingWhenCancelled:
    """As channels-redis can too: a cancelled receive takes the cancellation in and waits on,
    here until a message comes a second later."""

    async def receive(self, channel):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(1)
        return {"type": "late"}


@pytest.mark.asyncio
async def test_it_stops_a_receive_that_would_ignore_its_cancellation():
    task = asyncio.ensure_future(receive(KeepsWaitingWhenCancelled(), "c"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 0.5)


@pytest.mark.asyncio
async def test_it_lets_a_real_receive_error_through():
    class Broken:
        async def receive(self, channel):
            raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await receive(Broken(), "c")
