"""Semantic history retrieval (HISTORY_EMBEDDINGS=offline, the bundled MiniLM run on
NumPy; nothing is downloaded): a paraphrase recalls its fact, a question about a
promise recalls the promise, word matches still come first, and items are embedded
after commit, never in the writer's transaction. Exact budgets: what the selector
counts is what the request carries."""

from __future__ import annotations

import json
import random

import pytest
from django.conf import settings

from conversations.agent.history import select_history
from conversations.agent.tokens import get_encoding, sent_item_tokens
from conversations.knowledge import history_bench, history_semantic
from conversations.knowledge.history_bench import content_words
from conversations.knowledge.models import MessageEmbedding
from conversations.knowledge.retriever import FullTextRetriever
from tests.knowledge.helpers import append, exchange, filler, new_conversation, tool_pair

pytestmark = pytest.mark.django_db


@pytest.fixture
def offline_embeddings():
    options = settings.SUPPORT_PLATFORM
    settings.SUPPORT_PLATFORM = {**options, "HISTORY_EMBEDDINGS": "offline", "HISTORY_EMBED_BACKGROUND": False}
    history_semantic.clear_caches()
    yield
    settings.SUPPORT_PLATFORM = options
    history_semantic.clear_caches()


def _ask(conversation, question: str, budget: int = 800):
    (current,) = append(conversation, [{"kind": "user", "text": question}])
    history_semantic.embed_pending(conversation.pk)
    selection = select_history(conversation_id=conversation.pk, current=current, budget=budget)
    return selection, {item.message_id for item in selection.items}


def test_minilm_embeds_offline_and_knows_pets_from_weather():
    from conversations.knowledge.minilm import model

    vectors = model().embed(["My dog Rex chews everything.", "What's my pet called?", "It is sunny in Lyon."])
    assert vectors.shape == (3, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
    assert vectors[0] @ vectors[1] > vectors[2] @ vectors[1] + 0.3


def test_a_paraphrase_recalls_its_fact(offline_embeddings):
    conversation = new_conversation()
    fact, _ = append(conversation, exchange("My spaniel Biscuit chews everything, so it must be sturdy.", "Noted."))
    append(conversation, filler(150))
    question = "What's my pet called?"
    assert not content_words(question) & content_words(fact.text)
    selection, chosen = _ask(conversation, question)
    assert fact.pk in chosen
    assert any(item.reason == "retrieved" and item.message_id == fact.pk for item in selection.items)
    # Today's full-text selector cannot: no word is shared.
    (current,) = [m for m in conversation.messages.order_by("-seq")[:1]]
    plain = select_history(conversation_id=conversation.pk, current=current, budget=800, retriever=FullTextRetriever())
    assert fact.pk not in {item.message_id for item in plain.items}


def test_a_question_about_a_promise_recalls_the_promise(offline_embeddings):
    conversation = new_conversation()
    append(conversation, [{"kind": "user", "text": "The item arrived damaged, what can you do?"}])
    (promise,) = append(conversation, [{"kind": "assistant", "text": (
        "I've approved a refund of $40 to your card; it should land within five working days.")}])
    append(conversation, filler(150))
    _, chosen = _ask(conversation, "Did what you promised last week actually happen?")
    assert promise.pk in chosen


def test_word_matches_still_win(offline_embeddings):
    conversation = new_conversation()
    fact, _ = append(conversation, exchange("My order number is QX-48213, a lamp.", "Thanks, QX-48213 is open."))
    append(conversation, exchange("Can you check my purchase reference?", "Sure, which one?"))
    append(conversation, filler(150))
    hits = history_semantic.HybridHistoryRetriever().retrieve(
        conversation_id=conversation.pk, query="What's the status of QX-48213?", before_seq=10_000, limit=10)
    history_semantic.embed_pending(conversation.pk)
    hits = history_semantic.HybridHistoryRetriever().retrieve(
        conversation_id=conversation.pk, query="What's the status of QX-48213?", before_seq=10_000, limit=10)
    assert hits[0][0] in (fact.pk, fact.pk + 1)  # the statement or its acknowledgement, both name it
    assert fact.pk in [pk for pk, _ in hits[:2]]


def test_items_are_embedded_after_commit_not_in_the_writers_transaction(offline_embeddings, monkeypatch):
    scheduled = []
    monkeypatch.setitem(settings.SUPPORT_PLATFORM, "HISTORY_EMBED_BACKGROUND", True)
    monkeypatch.setattr(history_semantic.worker, "schedule", scheduled.append)
    conversation = new_conversation()
    append(conversation, exchange("Hello there", "Hi!"))
    assert not MessageEmbedding.objects.filter(conversation_id=conversation.pk).exists()
    # tests run inside a transaction: on_commit callbacks did not run; catch-up stores them
    assert history_semantic.embed_pending(conversation.pk) == 2
    assert history_semantic.embed_pending(conversation.pk) == 0


def test_off_means_full_text_only(monkeypatch):
    monkeypatch.setitem(settings.SUPPORT_PLATFORM, "HISTORY_EMBEDDINGS", "")
    conversation = new_conversation()
    append(conversation, exchange("My spaniel Biscuit chews everything.", "Noted."))
    assert history_semantic.embed_pending(conversation.pk) == 0
    assert history_semantic.HybridHistoryRetriever().retrieve(
        conversation_id=conversation.pk, query="pet name?", before_seq=100, limit=5) == []


@pytest.mark.parametrize("budget", [120, 400, 800])
def test_the_request_never_exceeds_the_budget(budget):
    """Staff prefixes, function names, call ids and arguments count: the selection's
    tokens are what the request's items cost, recounted from the items themselves."""
    conversation = new_conversation()
    items = []
    for n in range(40):
        items += exchange(f"Question {n} about the espresso grinder?", f"Answer {n}: it ships tomorrow.")
        items.append({"kind": "staff", "text": f"Checked item {n} with the warehouse.",
                      "metadata": {"author_name": "Dana Whitfield-Castellanos"}})
        items += tool_pair(f"call_{n}_abcdefghijklmnop", "lookup_order_status_with_a_long_name",
                           json.dumps({"order_number": f"QX-{n:05d}"}), '{"status": "shipped"}')
    append(conversation, items)
    (current,) = append(conversation, [{"kind": "user", "text": "And the grinder?"}])
    selection = select_history(conversation_id=conversation.pk, current=current, budget=budget)
    for name in ("o200k_base", "cl100k_base"):
        sent = sum(sent_item_tokens(item, get_encoding(name)) for item in selection.input_items)
        assert sent <= selection.tokens <= budget
    if budget >= 400:  # the costly kinds are among what was counted
        kinds = {item.get("role") or item["type"] for item in selection.input_items}
        assert {"developer", "function_call", "function_call_output"} <= kinds


def test_embed_history_catches_up(offline_embeddings):
    from django.core.management import call_command

    conversation = new_conversation()
    append(conversation, exchange("Hello there", "Hi!"))
    call_command("embed_history")
    assert MessageEmbedding.objects.filter(conversation_id=conversation.pk).count() == 2


def test_a_question_about_what_was_already_tried_recalls_it(offline_embeddings):
    conversation = new_conversation()
    fact, _ = append(conversation, exchange(
        "I already restarted the router twice and reset it to factory settings.", "Thanks, noted."))
    append(conversation, filler(150))
    _, chosen = _ask(conversation, "Remember what I told you I'd done on my side?")
    assert fact.pk in chosen


def test_a_statement_said_once_outranks_the_many_messages_alike(offline_embeddings, monkeypatch):
    """The semantic ranking discounts an item's similarity to the conversation's centroid:
    among 300 varied shop messages ("how long does shipping take to Lyon?"), the one
    statement about the customer's dog is what "who's the furry friend?" means, and it
    is sent at budget 800. Plain cosine ranked six of the filler above it, and fusion
    with the full-text ranking then left it out."""
    rng = random.Random(3)
    conversation = new_conversation()
    items = [item for _ in range(10) for item in history_bench._filler(rng)]
    items += exchange("My dog Pepper chews everything, so the toy has to be sturdy.", "Noted.")
    items += [item for _ in range(140) for item in history_bench._filler(rng)]
    fact = append(conversation, items)[20]
    question = "Who's the furry friend I'm shopping for?"
    assert not content_words(question) & content_words(fact.text)
    selection, chosen = _ask(conversation, question)
    assert fact.pk in chosen
    current = selection.items[-1]
    semantic, _ = history_semantic.semantic_rankings(conversation.pk, question, current.seq)
    assert semantic[0][0] == fact.pk

    monkeypatch.setattr(history_semantic, "CENTROID_WEIGHT", 0.0)
    plain, _ = history_semantic.semantic_rankings(conversation.pk, question, current.seq)
    assert [pk for pk, _ in plain].index(fact.pk) > 0
