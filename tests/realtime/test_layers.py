"""The embedded channel layer keeps channels' semantics with a bounded expiry sweep."""

from __future__ import annotations

import asyncio

from conversations.channel_layers.memory_layer import InMemoryChannelLayer


async def test_group_send_reaches_every_member_and_skips_full_channels():
    layer = InMemoryChannelLayer(capacity=1)
    first, second = await layer.new_channel(), await layer.new_channel()
    for channel in (first, second):
        await layer.group_add("conversation.x", channel)
    await layer.group_send("conversation.x", {"type": "a"})
    await layer.group_send("conversation.x", {"type": "b"})  # both full: dropped, no error
    assert await layer.receive(first) == {"type": "a"}
    assert await layer.receive(second) == {"type": "a"}


async def test_messages_still_expire_and_drop_the_stalled_channel_from_its_groups():
    layer = InMemoryChannelLayer(expiry=0.05, sweep_interval=0.0)
    stalled, live = await layer.new_channel(), await layer.new_channel()
    await layer.group_add("conversation.y", stalled)
    await layer.group_send("conversation.y", {"type": "old"})
    await asyncio.sleep(0.1)
    await layer.group_add("conversation.y", live)
    await layer.group_send("conversation.y", {"type": "new"})  # sweeps: `stalled` expired
    assert set(layer.groups["conversation.y"]) == {live}
    assert await layer.receive(live) == {"type": "new"}


async def test_the_sweep_runs_at_most_once_per_interval():
    layer = InMemoryChannelLayer(expiry=0.01, sweep_interval=60.0)
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_send("g", {"type": "first"})  # this send swept (first call)
    await asyncio.sleep(0.05)
    await layer.group_send("g", {"type": "second"})  # within the interval: no sweep
    assert await layer.receive(channel) == {"type": "first"}  # expired, but not yet swept
