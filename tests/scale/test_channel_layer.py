"""The Redis channel layer as configured: a consumer that waits quietly for events
must not fail. (redis-py's default read timeout equals channels_redis's 5 s blocking
receive, so without the configured socket_timeout an idle receive raised TimeoutError
after 5 s, which would drop every websocket quiet for that long.)"""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers

from conversations.agent.events import group_name

pytestmark = [pytest.mark.scale, pytest.mark.slow]


async def test_an_idle_receive_waits_past_the_blocking_timeout_then_gets_its_event():
    layer = channel_layers.make_backend("default")
    channel = await layer.new_channel()
    await layer.group_add(group_name("idle-probe"), channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        done, _ = await asyncio.wait({receiving}, timeout=11)
        assert not done, f"receive ended while idle: {receiving.exception()!r}"
        await layer.group_send(group_name("idle-probe"), {"type": "conversation.event", "event": {"type": "ping"}})
        message = await asyncio.wait_for(receiving, 5)
        assert message["event"] == {"type": "ping"}
    finally:
        receiving.cancel()
        await layer.group_discard(group_name("idle-probe"), channel)
