"""History selection under a token budget, as sent to the provider: newest first, older
items retrieved for relevance, call/output pairs intact, chronological, explained on the
Turn, and counted with the model's real tokenizer."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS, get_encoding
from conversations.models import Message
from conversations.services.items import items_append
from conversations.services.messages import note_add
from tests.engine.support import answered, ask
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(conversation, exchanges: int) -> None:
    """Customer questions, tool calls with outputs, and answers, as imports store them."""
    items = []
    for n in range(exchanges):
        items.append({"kind": "user", "text": f"Question {n}: is my parcel number {n} on its way?"})
        if n % 3 == 0:
            call_id = f"call_{n}"
            items.append({"kind": "function_call", "tool_name": "lookup_order", "call_id": call_id,
                          "tool_arguments": json.dumps({"order_number": str(5000 + n), "email": None})})
            items.append({"kind": "function_output", "tool_name": "lookup_order", "call_id": call_id,
                          "text": json.dumps({"order_number": str(5000 + n), "status": "shipped"})})
        items.append({"kind": "assistant", "text": f"Answer {n}: yes, parcel {n} left our warehouse today."})
    items.append({"kind": "function_output", "tool_name": "lookup_order", "call_id": "orphan",
                  "text": "an output whose call was never stored"})
    with transaction.atomic():
        items_append(conversation=conversation, items=items)


@pytest.fixture
def small_budget(agent):
    agent.history_token_budget = 600
    agent.save(update_fields=["history_token_budget"])
    return 600


def test_the_budget_is_respected_with_pairs_intact_in_chronological_order(conversation, provider, small_budget):
    _seed(conversation, 60)
    note_add(conversation=conversation, actor=None, text="Internal: VIP customer, never send this to the model")
    provider.queue(text("Here you go."))

    turn = answered(ask(conversation, "What about the espresso grinder in parcel 7?"))

    assert turn.status == "completed", turn.error_message
    sent = provider.requests[0]["input"]
    history = turn.history
    # Within budget, every item explained, the current message last
    assert turn.history_tokens == sum(item["tokens"] for item in history) <= small_budget
    assert history[-1]["reason"] == "current" and sent[-1]["content"].startswith("What about")
    assert len(history) == len(sent)
    # The customer facts (kept from the order lookups) first, then the history
    facts = [i["reason"] for i in history].count("fact")
    assert facts and {i["reason"] for i in history[:facts]} == {"fact"}
    history, sent = history[facts:], sent[facts:]
    assert {i["reason"] for i in history[:-1]} <= {"recent", "retrieved"}
    # Chronological
    seqs = [item["seq"] for item in history]
    assert seqs == sorted(seqs)
    # Calls and outputs travel together, and nothing unpaired is sent
    calls = {i["call_id"] for i in sent if i["type"] == "function_call"}
    outputs = {i["call_id"] for i in sent if i["type"] == "function_call_output"}
    assert calls == outputs and calls
    for index, item in enumerate(sent):
        if item["type"] == "function_call":
            assert sent[index + 1] == {"type": "function_call_output", "call_id": item["call_id"],
                                       "output": json.dumps({"order_number": str(5000 + int(item["call_id"][5:])), "status": "shipped"})}
    assert "orphan" not in outputs
    assert not any("VIP" in json.dumps(item) for item in sent)
    # The newest exchanges are there as one contiguous block; older ones did not all fit
    recent = [h["seq"] for h in history if h["reason"] == "recent"]
    block = Message.objects.filter(
        conversation=conversation, seq__gte=min(recent), seq__lt=history[-1]["seq"],
        kind__in=["user", "assistant", "function_call", "function_output"],
    ).exclude(call_id="orphan")
    assert sorted(block.values_list("seq", flat=True)) == recent
    assert len(sent) < Message.objects.filter(conversation=conversation).count()


def test_older_relevant_items_are_retrieved_with_a_score(conversation, provider, small_budget):
    _seed(conversation, 60)
    with transaction.atomic():
        conversation.refresh_from_db()
        items_append(conversation=conversation, items=[
            {"kind": "user", "text": "Does the warranty cover a broken burr carrier?"},
            {"kind": "assistant", "text": "Yes: the warranty covers the burr carrier for two years."},
        ])
    _seed(conversation, 60)  # pushes that exchange far out of the recent window
    provider.queue(text("Yes."))

    turn = answered(ask(conversation, "Remind me what the warranty said about the burr carrier"))

    retrieved = [h for h in turn.history if h["reason"] == "retrieved"]
    texts = set(Message.objects.filter(pk__in=[h["message_id"] for h in retrieved]).values_list("text", flat=True))
    assert "Yes: the warranty covers the burr carrier for two years." in texts
    assert all(h["score"] > 0 for h in retrieved)
    assert turn.history_tokens <= small_budget


MIXED = "Hello, world! Ünïcödé and emoji 🚚 count too."


def test_token_counts_come_from_the_models_real_encoding(conversation, provider):
    provider.queue(text("Hej!"))

    turn = answered(ask(conversation, MIXED))

    # Known o200k_base counts (gpt-4.1 family): independent of how the vocabulary loads
    stored = Message.objects.get(conversation=conversation, kind="user")
    assert stored.token_count == 15
    assert Message.objects.get(conversation=conversation, kind="assistant").token_count == 2
    assert get_encoding("o200k_base").encode_ordinary("Hello, world!") == [13225, 11, 2375, 0]
    assert turn.history == [{
        "message_id": stored.pk, "seq": 1, "kind": "user", "tokens": 15 + ITEM_OVERHEAD_TOKENS,
        "reason": "current", "score": None,
    }]


def test_older_models_count_with_cl100k(conversation, provider, agent):
    agent.model = "gpt-4-turbo"
    agent.save(update_fields=["model"])
    conversation.refresh_from_db()

    answered(ask(conversation, MIXED))

    assert Message.objects.get(conversation=conversation, kind="user").token_count == 19
    assert get_encoding("cl100k_base").encode_ordinary("Hello, world!") == [9906, 11, 1917, 0]
