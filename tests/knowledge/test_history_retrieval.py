"""RAG-selected history: the full-text retriever brings back the old item that answers
the new message, within the budget (real tokenizer), pairs whole, in order."""

from __future__ import annotations

import json

import pytest

from conversations.agent.history import select_history
from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS, count_for_model
from conversations.models import Message
from tests.knowledge.helpers import append, exchange, filler, new_conversation, tool_pair

pytestmark = pytest.mark.django_db


def _last_n_within(conversation, current: Message, budget: int) -> list[Message]:
    """The naive alternative: the newest items that fit the same budget."""
    chosen, used = [], current.token_count + ITEM_OVERHEAD_TOKENS
    for message in Message.objects.filter(conversation=conversation, seq__lt=current.seq).order_by("-seq"):
        cost = message.token_count + ITEM_OVERHEAD_TOKENS
        if used + cost > budget:
            break
        chosen.append(message)
        used += cost
    return chosen


def _real_tokens(messages: list[Message]) -> int:
    return sum(
        count_for_model(m.text + m.tool_arguments, "gpt-4.1-mini") + ITEM_OVERHEAD_TOKENS for m in messages
    )


def _assert_pairs_whole(messages: list[Message]) -> None:
    calls = {m.call_id for m in messages if m.kind == "function_call"}
    outputs = {m.call_id for m in messages if m.kind == "function_output"}
    assert calls == outputs


@pytest.fixture
def planted():
    """A long conversation with a delivery address change early on, asked about at the end."""
    conversation = new_conversation()
    append(conversation, exchange("Hi, I placed an order yesterday.", "Thanks, how can I help?"))
    fact, _ = append(
        conversation,
        exchange(
            "Please change my delivery address to 12 Rue Oberkampf, Paris.",
            "Done: the delivery address is now updated.",
        ),
    )
    append(conversation, filler(120))
    (question,) = append(
        conversation, [{"kind": "user", "text": "Which street did I give as my new delivery address?"}]
    )
    return conversation, fact, question


def test_retrieval_finds_the_planted_fact_that_last_n_misses(planted):
    conversation, fact, question = planted
    budget = 600

    selection = select_history(conversation_id=conversation.pk, current=question, budget=budget)

    assert fact.pk not in {m.pk for m in _last_n_within(conversation, question, budget)}
    selected = {item.message_id: item for item in selection.items}
    assert fact.pk in selected
    assert selected[fact.pk].reason == "retrieved"
    assert selected[fact.pk].score > 0
    assert selected[question.pk].reason == "current"
    assert {"recent", "retrieved", "current"} == {item.reason for item in selection.items}


def test_the_selection_is_explained_on_the_turn_shape(planted):
    conversation, fact, question = planted

    selection = select_history(conversation_id=conversation.pk, current=question, budget=600)

    explained = {entry["message_id"]: entry for entry in selection.explanation}
    assert explained[fact.pk]["reason"] == "retrieved"
    assert explained[fact.pk]["seq"] == fact.seq
    assert isinstance(explained[fact.pk]["score"], float)


def test_selection_is_chronological(planted):
    conversation, _, question = planted

    selection = select_history(conversation_id=conversation.pk, current=question, budget=600)

    seqs = [m.seq for m in selection.messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert selection.messages[-1].pk == question.pk


@pytest.mark.parametrize("budget", [40, 75, 150, 333, 600, 1200, 5000])
def test_the_budget_is_never_exceeded_counted_with_the_real_tokenizer(planted, budget):
    conversation, _, question = planted

    selection = select_history(conversation_id=conversation.pk, current=question, budget=budget)

    assert _real_tokens(selection.messages) == selection.tokens
    assert selection.tokens <= max(budget, question.token_count + ITEM_OVERHEAD_TOKENS)


def test_a_retrieved_tool_output_comes_with_its_call():
    conversation = new_conversation()
    append(conversation, exchange("Where is order 4417?", "Let me check."))
    call, output = append(
        conversation,
        tool_pair(
            "call_track", "lookup_order", json.dumps({"order_number": "4417", "email": None}),
            json.dumps({"order_number": "4417", "carrier": "DHL", "tracking_number": "JD0146000099"}),
        ),
    )
    append(conversation, exchange("Thanks", "You're welcome."))
    append(conversation, filler(80))
    (question,) = append(conversation, [{"kind": "user", "text": "What was the DHL tracking number again?"}])

    selection = select_history(conversation_id=conversation.pk, current=question, budget=400)

    chosen = {m.pk: m for m in selection.messages}
    assert output.pk in chosen and call.pk in chosen
    assert {i.reason for i in selection.items if i.message_id in (call.pk, output.pk)} == {"retrieved"}
    _assert_pairs_whole(selection.messages)


@pytest.mark.parametrize("budget", range(30, 400, 23))
def test_pairs_stay_whole_at_every_budget(budget):
    conversation = new_conversation()
    for n in range(25):
        append(conversation, exchange(f"Check order {5000 + n} please", "One moment."))
        append(
            conversation,
            tool_pair(f"call_{n}a", "lookup_order", json.dumps({"order_number": str(5000 + n)}), f"Order {5000 + n} is shipped.")
            + tool_pair(f"call_{n}b", "lookup_order", json.dumps({"order_number": str(7000 + n)}), f"Order {7000 + n} is processing."),
        )
        append(conversation, [{"kind": "assistant", "text": f"Order {5000 + n} has shipped."}])
    (question,) = append(conversation, [{"kind": "user", "text": "And order 5003 and 7011?"}])

    selection = select_history(conversation_id=conversation.pk, current=question, budget=budget)

    _assert_pairs_whole(selection.messages)
    assert selection.tokens <= max(budget, question.token_count + ITEM_OVERHEAD_TOKENS)
    seqs = [m.seq for m in selection.messages]
    assert seqs == sorted(seqs)


def test_a_short_conversation_is_sent_whole():
    conversation = new_conversation()
    append(conversation, exchange("Hello", "Hi! How can I help?"))
    (question,) = append(conversation, [{"kind": "user", "text": "What are your opening hours?"}])

    selection = select_history(conversation_id=conversation.pk, current=question, budget=8000)

    assert [m.pk for m in selection.messages] == list(
        Message.objects.filter(conversation=conversation).order_by("seq").values_list("pk", flat=True)
    )
    assert {i.reason for i in selection.items} == {"recent", "current"}
