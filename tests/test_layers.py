"""The in-process channel layer: the in-memory layer without a deep copy per receiver."""

from __future__ import annotations

import pytest
from channels.exceptions import ChannelFull

from eventfeed.layers import InProcessChannelLayer


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
