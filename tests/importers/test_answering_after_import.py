"""A customer who comes back finds the agent remembering them: the next message in an
imported conversation is answered with the imported history selected like any other."""

from __future__ import annotations

import json

import pytest

from conversations.knowledge import history_semantic
from conversations.knowledge.models import MessageEmbedding
from conversations.models import Conversation
from conversations.services.messages import message_post
from tests.conftest import wait_turn_finished
from tests.importers.conftest import run_import

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_next_message_is_answered_with_the_imported_history(tmp_path, default_agent, provider):
    key = {"conversation_id": "c-1", "customer_id": "u-1"}
    lines = [
        {**key, "role": "user", "content": "Where is order 1003? I'm at 5 Elm Street.", "created_at": 1_700_000_000},
        {**key, "role": "assistant", "content": None, "created_at": 1_700_000_005,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "lookup_order", "arguments": '{"order_number": "1003"}'}}]},
        {**key, "role": "tool", "tool_call_id": "call_1", "content": '{"status": "delivered"}'},
        {**key, "role": "assistant", "content": "Order 1003 was delivered yesterday."},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    run_import(str(path))
    conversation = Conversation.objects.get(external_id="c-1")

    posted = message_post(conversation=conversation, text="It never arrived at Elm Street.")
    turn = wait_turn_finished(posted.turn.id)

    assert turn.status == "completed", turn.error_message
    sent = provider.requests[-1]["input"]
    assert sent == [
        {"type": "message", "role": "user", "content": "Where is order 1003? I'm at 5 Elm Street."},
        {"type": "function_call", "call_id": "call_1", "name": "lookup_order", "arguments": '{"order_number": "1003"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": '{"status": "delivered"}'},
        {"type": "message", "role": "assistant", "content": "Order 1003 was delivered yesterday."},
        {"type": "message", "role": "user", "content": "It never arrived at Elm Street."},
    ]
    assert [item["reason"] for item in turn.history] == ["recent"] * 4 + ["current"]
    conversation.refresh_from_db()
    assert conversation.status == "open"  # imported as resolved, reopened by the customer
    assert list(conversation.messages.order_by("seq").values_list("kind", flat=True))[-2:] == ["user", "assistant"]


def test_an_import_leaves_embedding_to_the_customers_return(tmp_path, default_agent, provider, settings):
    """With the default semantic history, an import schedules no background embedding
    (100,000 imported items would cost the import process minutes of CPU); the next
    customer message embeds that conversation's imported items."""
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "HISTORY_EMBEDDINGS": "offline",
                                 "HISTORY_EMBED_BACKGROUND": True}
    history_semantic.clear_caches()
    key = {"conversation_id": "c-2", "customer_id": "u-2"}
    lines = [
        {**key, "role": "user", "content": "My spaniel Biscuit chews every cable.", "created_at": 1_700_000_000},
        {**key, "role": "assistant", "content": "Then the braided charger suits you.", "created_at": 1_700_000_005},
    ]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    try:
        run_import(str(path))
        assert history_semantic.worker.wait_idle(60)
        conversation = Conversation.objects.get(external_id="c-2")
        assert not MessageEmbedding.objects.filter(conversation_id=conversation.pk).exists()

        posted = message_post(conversation=conversation, text="Is that charger in stock?")
        assert wait_turn_finished(posted.turn.id).status == "completed"
        assert history_semantic.worker.wait_idle(60)

        embedded = set(MessageEmbedding.objects.filter(conversation_id=conversation.pk).values_list("seq", flat=True))
        assert {1, 2} <= embedded
    finally:
        history_semantic.clear_caches()
