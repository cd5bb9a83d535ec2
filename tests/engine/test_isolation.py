"""Conversations do not wait for each other: a slow tool in one conversation does not
delay another conversation's turn (tools run on the engine's own tool threads, ORM work
on its own database threads, never the single shared `sync_to_async` thread)."""

from __future__ import annotations

import threading

import pytest

from conversations.models import Turn
from conversations.services.conversations import conversation_create
from tests.engine.support import answered, ask, finished, items_of
from tests.fake_provider import calls, text
from tools.registry import ToolContext

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_slow_tool_in_one_conversation_does_not_delay_another(agent, provider, register_tool, gates):
    gate, entered = gates(), threading.Event()

    def warehouse_check(context: ToolContext) -> str:
        """A slow back-office system."""
        entered.set()
        gate.wait(20)
        return "in stock"

    register_tool(warehouse_check)
    slow = conversation_create(agent=agent)
    quick = conversation_create(agent=agent)
    provider.queue_for(slow.pk, calls(("warehouse_check", {})), text("It is in stock."))
    provider.queue_for(quick.pk, text("Our shop opens at nine."))

    # Given conversation A blocked inside its tool
    blocked = ask(slow, "Is the grinder in stock?").turn
    assert entered.wait(10)

    # When conversation B asks something, B is answered while A's tool is still blocked
    other = answered(ask(quick, "When do you open?"))
    assert other.status == "completed", other.error_message
    assert not gate.is_set() and Turn.objects.get(pk=blocked.pk).status == "running"
    assert [m.text for m in items_of(quick, "assistant")] == ["Our shop opens at nine."]
    assert other.time_to_first_token_ms is not None

    # And A finishes once its tool returns
    gate.set()
    assert finished(blocked).status == "completed"
    assert [m.text for m in items_of(slow, "assistant")] == ["It is in stock."]


def test_several_conversations_blocked_in_tools_do_not_hold_up_another(
    agent, provider, register_tool, gates, settings
):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "TOOL_TIMEOUT_SECONDS": 30}
    gate, entered = gates(), threading.Semaphore(0)

    def blocking_lookup(context: ToolContext) -> str:
        """Blocks."""
        entered.release()
        gate.wait(20)
        return "done"

    register_tool(blocking_lookup)
    blocked = []
    for _ in range(3):
        conversation = conversation_create(agent=agent)
        provider.queue_for(conversation.pk, calls(("blocking_lookup", {})), text("Done."))
        blocked.append(ask(conversation, "Run the lookup").turn)
    for _ in range(3):
        assert entered.acquire(timeout=10)
    free = conversation_create(agent=agent)
    provider.queue_for(free.pk, text("Hello!"))

    assert answered(ask(free, "Hi")).status == "completed"
    assert Turn.objects.filter(pk__in=[t.pk for t in blocked], status="running").count() == 3

    gate.set()
    assert all(finished(turn).status == "completed" for turn in blocked)
