"""Posting customer messages: durable and idempotent on `client_id`, answered one at a
time in order, and not answered by the AI once a person has been asked for."""

from __future__ import annotations

import pytest

from conversations.errors import Conflict, InvalidInput, PayloadTooLarge
from conversations.models import Message, Turn
from conversations.services.messages import message_post
from tests.engine.support import answered, ask, items_of, kinds, wait_until
from tests.fake_provider import calls, text

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_client_id_twice_is_one_message_and_one_turn(conversation, provider):
    provider.queue(text("Hi there."))

    first = ask(conversation, "Hello", client_id="c-1")
    second = ask(conversation, "Hello", client_id="c-1")

    assert first.created is True and second.created is False
    assert second.message.pk == first.message.pk and second.turn.pk == first.turn.pk
    answered(first)
    answered(ask(conversation, "Hello", client_id="c-1"))  # a late duplicate changes nothing
    assert Message.objects.filter(conversation=conversation, kind="user").count() == 1
    assert Turn.objects.filter(conversation=conversation).count() == 1
    assert len(provider.requests) == 1


@pytest.mark.parametrize(("text", "metadata"), [
    ("a lone \ud800 surrogate", None),  # a websocket frame's JSON may carry one
    ("fine", {"key": "nul\x00"}),
    ("fine", {"nul\x00key": "x"}),
])
def test_text_no_database_can_store_is_refused_before_anything_is_written(conversation, text, metadata):
    with pytest.raises(InvalidInput):
        message_post(conversation=conversation, text=text, metadata=metadata)
    assert not Message.objects.filter(conversation=conversation).exists()
    assert not Turn.objects.exists()


def test_the_same_client_id_with_different_text_is_a_conflict(conversation, provider):
    answered(ask(conversation, "Hello", client_id="c-1"))

    with pytest.raises(Conflict) as raised:
        ask(conversation, "Something else", client_id="c-1")

    assert raised.value.code == "client_id_reused" and raised.value.status == 409
    assert [m.text for m in items_of(conversation, "user")] == ["Hello"]
    assert Turn.objects.count() == 1


def test_two_quick_messages_are_answered_in_order_and_the_second_sees_the_first_answer(
    conversation, provider, gates
):
    # Given a model that holds its first answer until we let it go
    gate = gates()
    provider.queue(text("First answer.", gate=gate, pause_after=0), text("Second answer."))

    # When a second message is posted while the first is being answered
    one = ask(conversation, "First question?")
    wait_until(lambda: provider.requests)
    two = ask(conversation, "Second question?")
    gate.set()
    turn_one, turn_two = answered(one), answered(two)

    # Then both are answered, one at a time, in order
    assert turn_one.status == turn_two.status == "completed"
    assert turn_one.finished_at <= turn_two.started_at
    assert kinds(conversation) == ["user", "user", "assistant", "assistant"]
    assert [m.text for m in items_of(conversation, "assistant")] == ["First answer.", "Second answer."]
    assert items_of(conversation, "assistant")[0].turn_id == turn_one.pk
    # And the second request carries the first answer before the second question
    contents = [(i.get("role"), i.get("content")) for i in provider.requests[1]["input"]]
    assert contents == [
        ("user", "First question?"),
        ("assistant", "First answer."),
        ("user", "Second question?"),
    ]
    assert [(i["role"], i["content"]) for i in provider.requests[0]["input"]] == [("user", "First question?")]


def test_handoff_to_human_pauses_the_ai(conversation, provider):
    provider.queue(
        calls(("handoff_to_human", {"reason": "Customer asked for a person."})),
        text("A person will reply here shortly."),
    )

    turn = answered(ask(conversation, "I want to talk to a person"))

    assert turn.status == "completed", turn.error_message
    conversation.refresh_from_db()
    assert conversation.ai_paused is True and conversation.status == "waiting_on_staff"
    assert conversation.metadata["handoff_reason"] == "Customer asked for a person."
    # The next message is stored, and no turn answers it.
    later = ask(conversation, "Hello? Anyone?")
    assert later.turn is None and later.created is True
    assert kinds(conversation)[-1] == "user"
    assert Turn.objects.filter(conversation=conversation).count() == 1
    assert len(provider.requests) == 2


def test_an_oversized_message_is_refused_and_nothing_is_stored(conversation, provider):
    with pytest.raises(PayloadTooLarge):
        message_post(conversation=conversation, text="x" * 1_000_000)

    assert not Message.objects.exists() and not Turn.objects.exists()
    assert provider.requests == []
