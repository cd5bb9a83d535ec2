"""PII redaction before the provider, through the real SDK and the fake provider: with
the agent's redaction on, the requests the provider received (and the audit recorded)
carry placeholders only, across history, customer facts, tool outputs and
knowledge passages; a non-Luhn order number is left alone; the tool gets the real
email; the stored answer and the streamed deltas show the real values; with redaction
off (the default) the values go as they are."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.agent.events import group_name
from conversations.agent.redaction import NOTE_ITEM
from conversations.knowledge.services import document_create
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.facts import fact_add
from conversations.services.messages import message_post
from tests.engine.support import answered, ask, items_of
from tests.fake_provider import Step, calls, text
from tools.registry import ToolContext

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "ada@example.com"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
REF = "ORD-123456"
NOT_A_CARD = "1234567812345678"  # 16 digits that fail the Luhn check: an order number
RAW = (EMAIL, PHONE, CARD, IBAN, REF, "4111111111111111", "DE89370400440532013000")


@pytest.fixture
def redacting(agent):
    agent.pii_redaction = True
    agent.pii_patterns = [{"label": "ORDER_REF", "pattern": r"ORD-[0-9]{6}"}]
    agent.save()
    return agent


def _sent(requests: list[dict[str, Any]]) -> str:
    return json.dumps([request["input"] for request in requests], ensure_ascii=False)


def _assert_no_raw_values(requests: list[dict[str, Any]]) -> None:
    sent = _sent(requests)
    for value in RAW:
        assert value not in sent, f"{value!r} reached the provider"


def test_the_provider_receives_placeholders_for_every_kind_and_the_audit_says_which(
    redacting, conversation, provider
):
    # Given an agent that redacts, and a model that repeats what it was given
    provider.queue(text("Noted <EMAIL_1>, <PHONE_1>, <CARD_1>, <IBAN_1> and <ORDER_REF_1>."))
    message = (f"I'm {EMAIL}, call {PHONE}. Card {CARD}, refund to {IBAN}. "
               f"Letter {REF}, order {NOT_A_CARD}. Again: {EMAIL.upper()}")

    # When the customer writes all of it
    turn = answered(ask(conversation, message))

    # Then the provider saw placeholders only, the same value with the same one...
    assert turn.status == "completed", turn.error_message
    (request,) = provider.requests
    _assert_no_raw_values(provider.requests)
    assert request["input"][-1]["content"] == (
        "I'm <EMAIL_1>, call <PHONE_1>. Card <CARD_1>, refund to <IBAN_1>. "
        f"Letter <ORDER_REF_1>, order {NOT_A_CARD}. Again: <EMAIL_1>"
    )
    # ...the instructions are the company's own and go unchanged, and a note first tells
    # the model to write placeholders as shown
    assert request["instructions"] == redacting.instructions
    assert request["input"][0] == NOTE_ITEM and len(request["input"]) == 2
    # And the audit holds the request exactly as sent, and counts per kind (no values)
    assert turn.requests == provider.requests
    assert turn.redactions == {"enabled": True, "kinds": {
        "EMAIL": {"values": 1, "replacements": 2}, "PHONE": {"values": 1, "replacements": 1},
        "CARD": {"values": 1, "replacements": 1}, "IBAN": {"values": 1, "replacements": 1},
        "ORDER_REF": {"values": 1, "replacements": 1},
    }}
    assert EMAIL not in json.dumps(turn.redactions)
    # And the customer's stored message and the stored answer hold the real values
    assert Message.objects.get(conversation=conversation, kind="user").text == message
    (answer,) = items_of(conversation, "assistant")
    assert answer.text == f"Noted {EMAIL}, {PHONE}, {CARD}, {IBAN} and {REF}."


def test_history_facts_and_knowledge_passages_are_redacted_too(
    redacting, conversation, provider
):
    # Given an earlier exchange with the customer's email, a fact with their phone, and a
    # knowledge passage that names a card number
    provider.queue(text("Thanks, I have your email."))
    answered(ask(conversation, f"My email is {EMAIL}"))
    fact_add(conversation=conversation, actor=None, text=f"Call back on {PHONE}")
    document_create(title="Test cards", body=f"For test payments use the card {CARD} and any date.")
    provider.queue(calls(("search_knowledge_base", {"query": "test cards"})), text("Use <CARD_1>."))

    # When the customer asks again
    turn = answered(ask(conversation, f"Which card can I test with? Still {EMAIL}."))

    # Then neither round sent a value: history, fact, passage and message alike
    assert turn.status == "completed", turn.error_message
    first, second = provider.requests[-2:]
    _assert_no_raw_values([first, second])
    contents = [item.get("content") for item in first["input"]]
    assert "Customer fact (from staff): Call back on <PHONE_1>" in contents
    assert "My email is <EMAIL_1>" in contents
    assert contents[-1] == "Which card can I test with? Still <EMAIL_1>."
    passage = second["input"][-1]
    assert passage["type"] == "function_call_output" and "<CARD_1>" in passage["output"]
    # And what was stored has the real values: the tool's output and the answer
    (output,) = items_of(conversation, "function_output")
    assert CARD in output.text
    assert items_of(conversation, "assistant")[-1].text == f"Use {CARD}."
    assert turn.redactions["kinds"]["CARD"] == {"values": 1, "replacements": 1}


def test_the_tool_receives_the_real_email_and_its_output_goes_back_redacted(
    redacting, conversation, provider, register_tool
):
    # Given a model that calls tools with the placeholder it was shown
    seen: list[str] = []

    def customer_profile(context: ToolContext, email: str) -> dict[str, str]:
        """The customer's contact details.

        Args:
            email: The customer's email address.
        """
        seen.append(email)
        return {"email": email, "phone": PHONE}

    register_tool(customer_profile)
    provider.queue(
        calls(("lookup_order", {"order_number": "1001", "email": "<EMAIL_1>"}),
              ("customer_profile", {"email": "<EMAIL_1>"})),
        text("Order 1001 for <EMAIL_1> has shipped; we will call <PHONE_1>."),
    )

    # When the customer asks with their email
    turn = answered(ask(conversation, f"Where is order 1001? {EMAIL}"))

    # Then the tools ran with the real email (lookup_order found the order by it)
    assert turn.status == "completed", turn.error_message
    assert seen == [EMAIL]
    outputs = {m.tool_name: m.text for m in items_of(conversation, "function_output")}
    assert json.loads(outputs["lookup_order"])["status"] == "shipped"
    stored_calls = {m.tool_name: json.loads(m.tool_arguments) for m in items_of(conversation, "function_call")}
    assert stored_calls["lookup_order"] == {"order_number": "1001", "email": EMAIL}
    # And the next round passed the calls back as the model wrote them, outputs redacted
    second = provider.requests[1]
    _assert_no_raw_values(provider.requests)
    passed = [item for item in second["input"] if item["type"] == "function_call"]
    assert {json.loads(item["arguments"])["email"] for item in passed} == {"<EMAIL_1>"}
    profile = next(item for item in second["input"] if item["type"] == "function_call_output"
                   and "phone" in item["output"])
    assert json.loads(profile["output"]) == {"email": "<EMAIL_1>", "phone": "<PHONE_1>"}
    # And the customer's answer names the real values
    (answer,) = items_of(conversation, "assistant")
    assert answer.text == f"Order 1001 for {EMAIL} has shipped; we will call {PHONE}."


def test_redaction_is_off_by_default_and_values_go_unchanged(agent, conversation, provider):
    # Given the demo agent as it comes (redaction off)
    assert agent.pii_redaction is False
    provider.queue(text("Thanks."))

    # When the customer writes an email and a card number
    turn = answered(ask(conversation, f"I'm {EMAIL}, card {CARD}"))

    # Then they reach the provider as written and the audit records no redaction
    assert provider.requests[-1]["input"] == [{"type": "message", "role": "user", "content": f"I'm {EMAIL}, card {CARD}"}]
    assert Turn.objects.get(pk=turn.pk).redactions == {}


def test_an_invalid_pattern_cannot_be_saved_through_the_service(agent):
    from conversations.console.agents import agent_save
    from conversations.errors import InvalidInput

    agent.pii_patterns = [{"label": "order", "pattern": "ORD-("}]
    with pytest.raises(InvalidInput) as refused:
        agent_save(agent=agent, make_default=True)
    assert "pii_patterns" in refused.value.fields


async def _subscribe(conversation_id: Any) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation_id), channel)
    return layer, channel


async def test_streamed_deltas_show_real_values_even_when_a_placeholder_is_split(
    bound, redacting, conversation, provider, settings
):
    # Given deltas sent one by one, with placeholders split across them
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "DELTA_FLUSH_SECONDS": 0}
    words = ["We wrote to <EMA", "IL_1", "> and will", " call <", "PHONE_1> today", " (ref <ORDER_REF_", "1>)."]
    provider.queue(Step(kind="text", words=words))
    layer, channel = await _subscribe(conversation.pk)

    # When the customer asks
    posted = await sync_to_async(message_post)(conversation=conversation, text=f"{EMAIL} {PHONE} {REF}")
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] not in ("turn.completed", "turn.failed"):
        message = await asyncio.wait_for(layer.receive(channel), timeout=10)
        seen.append(message["event"])

    # Then no delta showed a placeholder or a piece of one, and together they are the answer
    assert seen[-1]["type"] == "turn.completed"
    deltas = [event["delta"] for event in seen if event["type"] == "text.delta"]
    assert len(deltas) > 1
    assert not any("<" in delta or ">" in delta for delta in deltas), deltas
    expected = f"We wrote to {EMAIL} and will call {PHONE} today (ref {REF})."
    assert "".join(deltas) == expected
    answer = await Message.objects.aget(conversation=conversation, kind="assistant")
    assert answer.text == expected
    turn = await Turn.objects.aget(pk=posted.turn.pk)
    _assert_no_raw_values(turn.requests)


def test_a_cut_stream_keeps_the_real_values_in_its_partial_text(redacting, conversation, provider):
    # Given a stream that breaks after a placeholder began
    provider.queue(Step(kind="cut", words=["Your email ", "<EMAIL_1> is ", "noted <EM", "AIL_1", "> and"], cut_after=3))

    # When the customer asks
    turn = answered(ask(conversation, f"I'm {EMAIL}"))

    # Then the turn failed and its partial text (staff's view) has the real value, held tail included
    assert turn.status == "failed" and turn.error_code == "stream_interrupted"
    assert turn.partial_text == f"Your email {EMAIL} is noted <EM"
    _assert_no_raw_values(turn.requests)


def test_placeholders_keep_their_numbers_from_turn_to_turn_so_the_prefix_stays_cacheable(
    redacting, conversation, provider
):
    # Given a first turn that sent the customer's email
    provider.queue(text("Thanks."), text("Both noted."))
    answered(ask(conversation, f"I'm {EMAIL}"))

    # When the next turn brings a second email along with the first
    answered(ask(conversation, f"Also bob@example.com, and {EMAIL} is still mine"))

    # Then the second request starts with the first one's input unchanged
    first, second = provider.requests
    assert second["input"][: len(first["input"])] == first["input"]
    assert second["input"][-1]["content"] == "Also <EMAIL_2>, and <EMAIL_1> is still mine"


def test_the_offline_model_looks_an_order_up_through_the_placeholder(default_agent, offline):
    # Given the built-in offline model and an agent that redacts
    default_agent.pii_redaction = True
    default_agent.save()
    conversation = conversation_create(channel="widget")

    # When an anonymous visitor asks with their email
    turn = answered(ask(conversation, f"Where is order 1001? I'm {EMAIL}"))

    # Then the model only saw the placeholder, the tool got the real email and found the order
    assert turn.status == "completed", turn.error_message
    assert EMAIL not in json.dumps(turn.requests)
    (call,) = items_of(conversation, "function_call")
    assert json.loads(call.tool_arguments)["email"] == EMAIL
    assert "shipped" in items_of(conversation, "assistant")[0].text
