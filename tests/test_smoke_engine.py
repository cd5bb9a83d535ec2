"""End to end through the engine with the offline model: a streamed answer and a tool call."""

from __future__ import annotations

import pytest

from conversations.models import Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_turn_finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_offline_model_answers_an_order_question_with_a_tool_call(default_agent, offline):
    conversation = conversation_create(channel="widget")
    posted = message_post(conversation=conversation, text="Where is order 1001? I'm ada@example.com")
    turn = wait_turn_finished(posted.turn.id)
    assert turn.status == "completed", turn.error_message
    kinds = list(Message.objects.filter(conversation=conversation).values_list("kind", flat=True))
    assert kinds == ["user", "function_call", "function_output", "assistant"]
    answer = Message.objects.get(conversation=conversation, kind="assistant")
    assert "1001" in answer.text and "shipped" in answer.text
