"""Events of one conversation reach subscribers in the order they were published, even
when the channel layer's sends take different times (Redis `group_send` is several
round trips, and sends in flight at once can overtake each other)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conversations.agent import engine as engine_module
from conversations.agent.engine import Engine
from conversations.channel_layers.memory_layer import InMemoryChannelLayer


class UnevenLayer(InMemoryChannelLayer):
    """The in-memory layer, except that a send whose event says so is slow."""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await asyncio.sleep(message["event"].get("delay", 0))
        await super().group_send(group, message)


@pytest.fixture
def layer(monkeypatch):
    layer = UnevenLayer()
    monkeypatch.setattr(engine_module, "get_channel_layer", lambda: layer)
    return layer


async def received(layer: UnevenLayer, channel: str, count: int) -> list[str]:
    return [(await layer.receive(channel))["event"]["type"] for _ in range(count)]


async def test_a_slow_send_is_not_overtaken_by_a_later_one_of_the_same_conversation(layer):
    engine = Engine()
    channel = await layer.new_channel()
    await layer.group_add("conversation.c1", channel)
    # As publish_on_commit does: each event is its own task, submitted in order.
    tasks = [asyncio.create_task(engine.publish("c1", {"type": "message", "delay": 0.2})),
             asyncio.create_task(engine.publish("c1", {"type": "turn.completed"}))]
    await asyncio.gather(*tasks)
    assert await received(layer, channel, 2) == ["message", "turn.completed"]


async def test_other_conversations_do_not_wait_for_a_slow_send(layer):
    engine = Engine()
    channel = await layer.new_channel()
    await layer.group_add("conversation.c1", channel)
    await layer.group_add("conversation.c2", channel)
    slow = asyncio.create_task(engine.publish("c1", {"type": "message", "delay": 2.0}))
    await asyncio.wait_for(engine.publish("c2", {"type": "text.delta"}), timeout=1.0)
    assert await received(layer, channel, 1) == ["text.delta"]
    await slow
