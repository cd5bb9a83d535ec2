"""Relevance retrieval on carried turns (the stable prefix): a question about something
said long ago gets it sent on a turn that carries the previous selection, in a recalled
block after the carried prefix, while turns that need nothing old keep the prefix
exactly; every selector guarantee holds for the block."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from conversations.agent import history
from conversations.agent.history import RECALL_NOTE, HistorySelection, select_history
from conversations.models import Message
from conversations.services.items import items_append
from conversations.services.messages import note_add
from tests.engine.support import answered, ask
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)

BUDGET = 600
FACT = "Please change my delivery address to 12 Rue Oberkampf, Paris."
QUESTION = "Which street did I give as my new delivery address?"
UNRELATED = "Do you sell descaling tablets for the kettle?"


def _append(conversation, items: list[dict]) -> list[Message]:
    with transaction.atomic():
        return items_append(conversation=conversation, items=items)


def _filler(exchanges: int, start: int = 0) -> list[dict]:
    """Exchanges sharing no content word with the fact, a tool pair now and then."""
    items: list[dict] = []
    for n in range(start, start + exchanges):
        items.append({"kind": "user", "text": f"Question {n}: is my parcel number {n} on its way?"})
        if n % 5 == 0:
            call_id = f"call_{n}"
            items += [
                {"kind": "function_call", "tool_name": "lookup_order", "call_id": call_id,
                 "tool_arguments": json.dumps({"order_number": str(5000 + n)})},
                {"kind": "function_output", "tool_name": "lookup_order", "call_id": call_id,
                 "text": json.dumps({"order_number": str(5000 + n), "status": "shipped"})},
            ]
        items.append({"kind": "assistant", "text": f"Answer {n}: yes, parcel {n} left our warehouse today."})
    return items


@pytest.fixture
def long_chat(conversation):
    """A fact early on, then enough filler to push it far out of the budget."""
    _append(conversation, [{"kind": "user", "text": "Hi, I placed an order yesterday."},
                           {"kind": "assistant", "text": "Thanks, how can I help?"}])
    fact, _ = _append(conversation, [{"kind": "user", "text": FACT},
                                     {"kind": "assistant", "text": "Done: it is updated."}])
    _append(conversation, _filler(80))
    return conversation, fact


def _turn(conversation, message: str, previous: HistorySelection | None) -> HistorySelection:
    """Answer `message` as the engine does: select with the previous turn's recorded
    selection, then store an answer."""
    (current,) = _append(conversation, [{"kind": "user", "text": message}])
    selection = select_history(
        conversation_id=conversation.pk, current=current, budget=BUDGET,
        previous=previous.explanation if previous else None,
    )
    _append(conversation, [{"kind": "assistant", "text": f"Noted: {message[:20]}"}])
    return selection


def _carried(previous: HistorySelection) -> list[int]:
    """What the next turn re-sends first: the previous selection, recalled items aside."""
    return [i["message_id"] for i in previous.explanation if i["reason"] not in ("recall note", "recalled")]


def _assert_guarantees(selection: HistorySelection) -> None:
    assert selection.tokens == sum(i["tokens"] for i in selection.explanation) <= selection.budget == BUDGET
    assert selection.explanation[-1]["reason"] == "current"
    assert len(selection.input_items) == len(selection.explanation)
    # The customer facts (the filler's order lookups) come first, then the history.
    facts = next((n for n, e in enumerate(selection.explanation) if e["reason"] != "fact"), 0)
    for entry, item in zip(selection.explanation[:facts], selection.input_items[:facts], strict=True):
        assert entry["message_id"] is None and entry["fact_id"] and item["role"] == "developer"
    selection = HistorySelection(items=selection.items[facts:], input_items=selection.input_items[facts:],
                                 budget=selection.budget, tokens=selection.tokens,
                                 explanation=selection.explanation[facts:])
    calls = [i["call_id"] for i in selection.input_items if i["type"] == "function_call"]
    outputs = [i["call_id"] for i in selection.input_items if i["type"] == "function_call_output"]
    assert sorted(calls) == sorted(outputs)
    for index, item in enumerate(selection.input_items):  # each output right after its call
        if item["type"] == "function_call":
            assert selection.input_items[index + 1]["call_id"] == item["call_id"]
    for entry in selection.explanation:
        assert entry["reason"] in ("recent", "retrieved", "recall note", "recalled", "current")
        assert (entry["score"] is not None) == (entry["reason"] in ("retrieved", "recalled"))
    # Carried items chronological; the recalled block opened by its note, chronological,
    # right before `current`.
    reasons = [e["reason"] for e in selection.explanation[:-1]]
    block = reasons.index("recall note") if "recall note" in reasons else len(reasons)
    assert "recalled" not in reasons[:block] and set(reasons[block + 1:]) <= {"recalled"}
    if block < len(reasons):
        assert reasons[block + 1:], "a note with nothing recalled"
        assert selection.input_items[block] == {"type": "message", "role": "developer", "content": RECALL_NOTE}
        assert selection.explanation[block]["message_id"] is None
    for part in (selection.explanation[:block], selection.explanation[block + 1:-1]):
        seqs = [e["seq"] for e in part]
        assert seqs == sorted(seqs)


def test_an_early_fact_asked_on_a_carried_turn_is_sent(long_chat):
    conversation, fact = long_chat
    first = _turn(conversation, "Question 80: is my parcel number 80 on its way?", None)
    second = _turn(conversation, "Question 81: and parcel number 81?", first)

    question = _turn(conversation, QUESTION, second)

    sent = [i["message_id"] for i in question.explanation]
    # Not a rebuild: the previous selection is re-sent first, in the same order ...
    assert sent[: len(_carried(second))] == _carried(second)
    # ... and the fact is there, recalled for this message with its score.
    entry = next(i for i in question.explanation if i["message_id"] == fact.pk)
    assert entry["reason"] == "recalled" and entry["score"] > 0
    assert {"role": "user", "type": "message", "content": FACT} in question.input_items
    _assert_guarantees(question)


def test_turns_that_need_nothing_old_keep_the_prefix_exactly(long_chat):
    conversation, fact = long_chat
    first = _turn(conversation, "Question 80: is my parcel number 80 on its way?", None)
    previous = _turn(conversation, "Question 81: and parcel number 81?", first)  # rebuilt: room to grow
    for n in range(3):
        selection = _turn(conversation, f"{UNRELATED} Asking for the {n + 1}th time, sorry.", previous)
        assert not {"recall note", "recalled"} & {i["reason"] for i in selection.explanation}
        sent = [i["message_id"] for i in selection.explanation]
        assert sent[: len(_carried(previous))] == _carried(previous)
        _assert_guarantees(selection)
        previous = selection
    assert fact.pk not in {i["message_id"] for i in previous.explanation}


def test_the_recalled_block_is_for_its_turn_only(long_chat):
    """The next turn carries the prefix, not the block: the block's items are not
    re-sent in the middle of the history (they would split what the cache holds)."""
    conversation, fact = long_chat
    first = _turn(conversation, "Question 80: is my parcel number 80 on its way?", None)
    second = _turn(conversation, "Question 81: and parcel number 81?", first)
    question = _turn(conversation, QUESTION, second)
    assert {i["reason"] for i in question.explanation if i["message_id"] == fact.pk} == {"recalled"}

    after = _turn(conversation, UNRELATED, question)

    assert fact.pk not in {i["message_id"] for i in after.explanation}
    sent = [i["message_id"] for i in after.explanation]
    assert sent[: len(_carried(question))] == _carried(question)
    _assert_guarantees(after)


def test_a_recalled_tool_result_comes_with_its_call_and_notes_stay_out(conversation):
    _append(conversation, [
        {"kind": "user", "text": "Where is my espresso grinder?"},
        {"kind": "function_call", "tool_name": "lookup_order", "call_id": "call_grinder",
         "tool_arguments": json.dumps({"order_number": "NW-48213"})},
        {"kind": "function_output", "tool_name": "lookup_order", "call_id": "call_grinder",
         "text": json.dumps({"order_number": "NW-48213", "carrier": "Chronopost", "status": "shipped"})},
        {"kind": "assistant", "text": "It left with the courier yesterday."},
    ])
    with transaction.atomic():
        note_add(conversation=conversation, actor=None, text="Internal: Chronopost claims are slow, VIP")
    _append(conversation, _filler(80))
    first = _turn(conversation, "Question 80: is my parcel number 80 on its way?", None)
    second = _turn(conversation, "Question 81: and parcel number 81?", first)

    question = _turn(conversation, "Which carrier took it, Chronopost?", second)

    recalled = [i for i in question.explanation if i["reason"] == "recalled"]
    assert {i["kind"] for i in recalled} >= {"function_call", "function_output"}
    assert not any("VIP" in json.dumps(item) for item in question.input_items)
    _assert_guarantees(question)


def test_without_the_recalled_block_the_fact_waits_for_a_rebuild(long_chat, monkeypatch):
    """The regression this guards against: with the block off (retrieval only at
    rebuilds, as the stable prefix first shipped), the same carried turn misses the fact."""
    monkeypatch.setattr(history, "RECALL_SHARE", 0.0)
    conversation, fact = long_chat
    first = _turn(conversation, "Question 80: is my parcel number 80 on its way?", None)
    second = _turn(conversation, "Question 81: and parcel number 81?", first)

    question = _turn(conversation, QUESTION, second)

    assert [i["message_id"] for i in question.explanation][: len(_carried(second))] == _carried(second)
    assert fact.pk not in {i["message_id"] for i in question.explanation}


@pytest.fixture
def small_budget(agent):
    agent.history_token_budget = BUDGET
    agent.save(update_fields=["history_token_budget"])
    return BUDGET


def test_a_real_turn_sends_the_early_fact_after_the_cached_prefix(long_chat, provider, small_budget):
    conversation, fact = long_chat
    provider.queue(text("Sure."), text("Sure again."), text("It was Rue Oberkampf."))
    answered(ask(conversation, "Question 80: is my parcel number 80 on its way?"))
    before = answered(ask(conversation, "Question 81: and parcel number 81?"))

    turn = answered(ask(conversation, QUESTION))

    assert turn.status == "completed", turn.error_message
    previous_input, sent = provider.requests[-2]["input"], provider.requests[-1]["input"]
    # The request starts with the previous request's history, its recalled block aside.
    assert len(previous_input) == len(before.history)
    prefix = [item for item, entry in zip(previous_input, before.history, strict=True)
              if entry["reason"] not in ("recall note", "recalled")]
    assert sent[: len(prefix)] == prefix
    entry = next(i for i in turn.history if i["message_id"] == fact.pk)
    assert entry["reason"] == "recalled" and entry["score"] > 0
    assert sent[-1]["content"] == QUESTION and {"type": "message", "role": "user", "content": FACT} in sent
    assert turn.history_tokens <= BUDGET

    # and the staff audit explains the block: the note, then the recalled fact with its score
    from tests.console.conftest import logged_in, make_staff, turn_url

    audit = logged_in(make_staff("auditor", superuser=True)).get(turn_url(turn)).content.decode()
    assert "recall note" in audit and "earlier parts of this conversation" in audit
    assert "recalled" in audit and "(item no longer stored)" not in audit
