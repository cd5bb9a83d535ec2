"""The offline model answers from the knowledge base through `search_knowledge_base`,
end to end through the engine, and the answer carries its sources."""

from __future__ import annotations

import json

import pytest

from conversations.knowledge.models import Document
from conversations.models import Message
from conversations.presenters import message_to_dict
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_turn_finished

pytestmark = pytest.mark.django_db(transaction=True)


def _answer_turn(text: str) -> tuple[list[Message], Message]:
    conversation = conversation_create(channel="widget")
    posted = message_post(conversation=conversation, text=text)
    turn = wait_turn_finished(posted.turn.id)
    assert turn.status == "completed", turn.error_message
    items = list(Message.objects.filter(conversation=conversation).order_by("seq"))
    return items, items[-1]


def test_offline_model_answers_a_question_from_the_help_articles(default_agent, offline):
    items, answer = _answer_turn("How long does express shipping take?")

    assert [m.kind for m in items] == ["user", "function_call", "function_output", "assistant"]
    assert items[1].tool_name == "search_knowledge_base"
    results = json.loads(items[2].text)["results"]
    shipping = Document.objects.get(title="Shipping and delivery")
    assert results[0]["document_id"] == shipping.pk
    assert set(results[0]) == {"document_id", "title", "passage_id", "text", "score"}
    assert 'From "Shipping and delivery"' in answer.text and "1-2 business days" in answer.text

    sources = message_to_dict(answer)["metadata"]["sources"]
    assert sources[0]["document_id"] == shipping.pk
    assert sources[0]["passage_id"] == results[0]["passage_id"]
    assert sources[0]["title"] == "Shipping and delivery"
    assert "Express shipping" in sources[0]["snippet"]


def test_an_article_added_later_is_found_by_the_next_question(default_agent, offline):
    from conversations.knowledge.services import document_create

    document = document_create(
        title="Gift cards",
        body="# Gift cards\n\nGift cards never expire and can be used for any product in the shop.",
    )
    _, answer = _answer_turn("Do your gift cards expire?")

    assert 'From "Gift cards"' in answer.text and "never expire" in answer.text
    assert answer.metadata["sources"][0]["document_id"] == document.pk


def test_a_question_the_articles_do_not_cover_gets_an_honest_answer(default_agent, offline):
    items, answer = _answer_turn("Zyxxqv blorf?")

    assert json.loads(items[2].text) == {"results": []}
    assert "could not find that in our help articles" in answer.text
    assert "sources" not in answer.metadata


def test_a_turn_records_the_retrieved_history_with_reasons_and_scores(default_agent, offline):
    from tests.knowledge.helpers import append, exchange, filler

    default_agent.history_token_budget = 300
    default_agent.save(update_fields=["history_token_budget"])
    conversation = conversation_create(channel="widget")
    fact, _ = append(conversation, exchange("Please send my parcel to 12 Rue Oberkampf, Paris.", "Done."))
    append(conversation, filler(60))

    posted = message_post(conversation=conversation, text="Which street in Paris did I give you?")
    turn = wait_turn_finished(posted.turn.id)

    assert turn.status == "completed", turn.error_message
    history = {entry["message_id"]: entry for entry in turn.history}
    assert history[fact.pk]["reason"] == "retrieved" and history[fact.pk]["score"] > 0
    assert history[posted.message.pk]["reason"] == "current"
    assert turn.history_tokens <= turn.history_budget == 300
    sent = turn.requests[0]["input"]
    assert any("Rue Oberkampf" in str(item.get("content", "")) for item in sent)
