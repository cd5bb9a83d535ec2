"""The Redis channel layer as configured (conversations/channel_layers/redis_layer.py): a burst
of sends larger than the connection pool waits instead of failing, `group_send` keeps
channels_redis's delivery rules, and a consumer that waits quietly for events must not
fail. (redis-py's default read timeout equals channels_redis's 5 s blocking
receive, so without the configured socket_timeout an idle receive raised TimeoutError
after 5 s, which would drop every websocket quiet for that long.)"""

from __future__ import annotations

import asyncio
import time

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


async def _receives_nothing(layer, channel, seconds=0.5):
    waiting = asyncio.ensure_future(layer.receive(channel))
    done, _ = await asyncio.wait({waiting}, timeout=seconds)
    waiting.cancel()
    return not done


def _layer(**config):
    """The configured layer class on the configured Redis, with a prefix of its own."""
    from django.conf import settings

    from conversations.channel_layers.redis_layer import RedisChannelLayer

    defaults = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    prefix = f"{defaults['prefix']}:probe{time.monotonic_ns()}"
    return RedisChannelLayer(**{**defaults, "prefix": prefix, **config})


async def test_sends_beyond_the_connection_pool_wait_for_a_connection_instead_of_failing():
    layer = _layer(max_connections=2)
    channel = await layer.new_channel()
    await layer.group_add("burst", channel)
    # 60 sends at once on a pool of 2 connections (redis-py's own pool would raise
    # MaxConnectionsError for all but two of them)
    await asyncio.gather(*(layer.group_send("burst", {"type": "e", "n": n}) for n in range(60)))
    got = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(60)]
    assert sorted(got) == list(range(60))
    await layer.flush()


async def test_group_send_reaches_every_member_and_drops_only_for_a_full_channel():
    # Two processes: each layer's channels share one Redis queue (its client prefix)
    layer = _layer(capacity=3)
    other_process = _layer(capacity=3, prefix=layer.prefix)
    reader, other = await layer.new_channel(), await layer.new_channel()
    full = await other_process.new_channel()
    for owner, channel in ((layer, reader), (layer, other), (other_process, full)):
        await owner.group_add("members", channel)
    await other_process.group_add("backlog", full)
    for n in range(3):
        await other_process.group_send("backlog", {"type": "e", "n": f"old{n}"})
    await layer.group_send("members", {"type": "e", "n": "new"})
    assert (await asyncio.wait_for(layer.receive(reader), 5))["n"] == "new"
    assert (await asyncio.wait_for(layer.receive(other), 5))["n"] == "new"
    # The full queue keeps its backlog and did not take the new event
    got = [(await asyncio.wait_for(other_process.receive(full), 5))["n"] for _ in range(3)]
    assert got == ["old0", "old1", "old2"]
    assert await _receives_nothing(other_process, full)
    # A member that left gets nothing more
    await layer.group_discard("members", other)
    await layer.group_send("members", {"type": "e", "n": "after"})
    assert (await asyncio.wait_for(layer.receive(reader), 5))["n"] == "after"
    assert await _receives_nothing(layer, other)
    await layer.flush()


async def test_a_backlog_is_received_whole_and_in_order_for_every_channel_of_the_process():
    layer = _layer(prefetch=7)  # several batches, the last one partial
    first, second = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("both", first)
    await layer.group_add("both", second)
    for n in range(20):
        await layer.send(first, {"type": "e", "n": n})
        await layer.group_send("both", {"type": "e", "n": 100 + n})
    got_first = [(await asyncio.wait_for(layer.receive(first), 5))["n"] for _ in range(40)]
    got_second = [(await asyncio.wait_for(layer.receive(second), 5))["n"] for _ in range(20)]
    assert got_first == [x for n in range(20) for x in (n, 100 + n)]
    assert got_second == [100 + n for n in range(20)]
    await layer.flush()
