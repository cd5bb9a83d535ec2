"""Reasoning items with `store=False`: the encrypted content comes back to us and is passed
back within the turn's tool loop, always together with the item that followed it."""

from __future__ import annotations

import pytest

from conversations.models import Message
from tests.engine.support import answered, ask
from tests.fake_provider import calls, text

pytestmark = pytest.mark.django_db(transaction=True)

ADA_1001 = {"order_number": "1001", "email": "ada@example.com"}


@pytest.fixture
def reasoning_agent(agent):
    agent.model = "gpt-5-mini"
    agent.reasoning_effort = "low"
    agent.temperature = 0.2  # a row saved before the capability check: never sent to gpt-5-mini
    agent.save(update_fields=["model", "reasoning_effort", "temperature"])
    return agent


def test_reasoning_items_are_passed_back_with_the_call_that_followed(conversation, provider, reasoning_agent):
    provider.queue(
        calls(("lookup_order", ADA_1001), reasoning="gAAAA-encrypted-thoughts-1"),
        calls(("lookup_order", {"order_number": "1003", "email": "ada@example.com"}), reasoning="gAAAA-2"),
        text("Both orders are fine."),
    )

    turn = answered(ask(conversation, "How are 1001 and 1003 doing? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    first, second, third = provider.requests
    assert first["include"] == ["reasoning.encrypted_content"]
    assert first["reasoning"] == {"effort": "low"} and "temperature" not in first
    for request, expected in ((second, ["gAAAA-encrypted-thoughts-1"]), (third, ["gAAAA-encrypted-thoughts-1", "gAAAA-2"])):
        items = request["input"]
        reasoning = [i for i, item in enumerate(items) if item["type"] == "reasoning"]
        assert [items[i]["encrypted_content"] for i in reasoning] == expected
        for index in reasoning:  # each one immediately followed by the call it led to
            assert items[index + 1]["type"] == "function_call"
            assert items[index]["id"].startswith("rs_") and items[index]["summary"] == []
    # Reasoning is never stored as a conversation item.
    assert not Message.objects.filter(text__contains="gAAAA").exists()


def test_a_dangling_reasoning_item_is_not_sent_back(conversation, provider, reasoning_agent):
    provider.queue(
        calls(("lookup_order", ADA_1001), reasoning="gAAAA-leading", trailing_reasoning="gAAAA-dangling"),
        text("Shipped."),
    )

    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))

    assert turn.status == "completed", turn.error_message
    sent = [item.get("encrypted_content") for item in provider.requests[1]["input"] if item["type"] == "reasoning"]
    assert sent == ["gAAAA-leading"]
    assert provider.requests[1]["input"][-1]["type"] == "function_call_output"
