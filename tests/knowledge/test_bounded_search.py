"""Bounded retrieval cost: history full-text search ranks only the newest
`SEARCH_WINDOW` items of a conversation, so what it reads does not grow with the
conversation's length (on SQLite, the statements FTS5 runs to read its index, counted
with the connection's trace callback); an older item is still reached by the semantic
ranking."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from conversations.knowledge import history_semantic, search
from conversations.knowledge.search import full_text, search_terms
from tests.knowledge.helpers import append, exchange, filler, new_conversation

pytestmark = pytest.mark.django_db

WINDOW = 60
QUESTION = "Does the travel mug come in other colours?"


@pytest.fixture
def window(monkeypatch):
    monkeypatch.setattr(search, "SEARCH_WINDOW", WINDOW)


def _conversation(exchanges: int):
    conversation = new_conversation()
    old, _ = append(conversation, exchange("Which colours does the travel mug come in?", "Black and sage."))
    append(conversation, filler(exchanges))
    return conversation, old


def _search(conversation) -> tuple[list[int], int]:
    """(message ids found, statements the database ran for the search)."""
    statements = [0]
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor == "sqlite":
        raw.set_trace_callback(lambda sql: statements.__setitem__(0, statements[0] + 1))
    try:
        found = full_text().search_messages(conversation.pk, search_terms(QUESTION), conversation.next_seq, 50)
    finally:
        if connection.vendor == "sqlite":
            raw.set_trace_callback(None)
    return [pk for pk, _ in found], statements[0]


def test_full_text_ranks_only_the_newest_items(window):
    short, short_old = _conversation(20)  # 42 items: all within the window
    long, long_old = _conversation(400)  # 802 items

    short_found, _ = _search(short)
    long_found, _ = _search(long)

    assert short_old.pk in short_found
    assert long_old.pk not in long_found and long_found  # newer matches only
    floor = long.next_seq - WINDOW
    assert all(seq >= floor for seq in long.messages.filter(pk__in=long_found).values_list("seq", flat=True))


def test_what_a_search_reads_does_not_grow_with_the_conversation(window, monkeypatch):
    if connection.vendor != "sqlite":  # PostgreSQL: the (conversation_id, seq) range bounds it alike
        return
    medium, _ = _conversation(100)
    long, _ = _conversation(1_000)
    bounded = (_search(medium)[1], _search(long)[1])
    monkeypatch.setattr(search, "SEARCH_WINDOW", 10**9)
    whole = (_search(medium)[1], _search(long)[1])

    assert bounded[1] <= bounded[0] * 1.25, bounded
    assert whole[1] > whole[0] * 2, whole  # without the window the long one reads far more


def test_an_item_older_than_the_window_is_still_found_by_meaning(window, monkeypatch):
    monkeypatch.setitem(settings.SUPPORT_PLATFORM, "HISTORY_EMBEDDINGS", "offline")
    history_semantic.clear_caches()
    conversation = new_conversation()
    fact, _ = append(conversation, exchange("My spaniel Biscuit chews everything, so the toy must be sturdy.", "Noted."))
    append(conversation, filler(100))
    history_semantic.embed_pending(conversation.pk)

    hits = history_semantic.HybridHistoryRetriever().retrieve(
        conversation_id=conversation.pk, query="What is my spaniel called?", before_seq=conversation.next_seq,
        limit=20)

    assert fact.pk in [pk for pk, _ in hits]
    history_semantic.clear_caches()
