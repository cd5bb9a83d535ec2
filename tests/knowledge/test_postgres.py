"""PostgreSQL engine specifics (scale mode). These run when the suite runs against
PostgreSQL, e.g. `DATABASE_URL=postgres://postgres@127.0.0.1:5432/support pytest tests/knowledge`;
every other knowledge test runs there too, through the same interface."""

from __future__ import annotations

import pytest
from django.db import connection

from conversations.knowledge.models import MessageIndexEntry
from conversations.knowledge.search import full_text
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_create
from conversations.retrieval import default_retriever
from tests.knowledge.helpers import append, exchange, new_conversation

pytestmark = [
    pytest.mark.scale,
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only: run with DATABASE_URL=postgres://... to test the scale-mode engine",
    ),
]


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_engine_is_postgres_text_search_on_stored_vectors():
    assert full_text().vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type, is_generated FROM information_schema.columns "
            "WHERE table_name = 'knowledge_passage' AND column_name = 'search_vector'"
        )
        assert cursor.fetchone() == ("tsvector", "ALWAYS")


def test_passage_search_uses_the_gin_index():
    plan = _plan("SELECT id FROM knowledge_passage WHERE search_vector @@ to_tsquery('english', 'refund')")
    assert "knowledge_passage_tsv" in plan


def test_item_search_stays_within_the_conversation_index():
    plan = _plan(
        "SELECT message_id FROM knowledge_messageindexentry WHERE conversation_id = "
        "'00000000-0000-0000-0000-000000000001' AND seq < 10 AND vector @@ to_tsquery('english', 'refund')"
    )
    assert "knowledge_msgidx_conv_seq" in plan


def test_items_get_a_stored_vector_and_lose_it_with_the_item():
    conversation = new_conversation()
    user, _ = append(conversation, exchange("Refunds to my Lisbon address", "Ok."))

    entry = MessageIndexEntry.objects.get(message_id=user.pk)
    assert "lisbon" in entry.vector and entry.conversation_id == conversation.pk

    conversation.delete()
    assert not MessageIndexEntry.objects.exists()


def test_title_and_heading_matches_outrank_body_matches():
    document_create(title="General", body="Mentions a refund once, among many other words here.")
    document_create(title="Refunds", body="How we pay money back.")

    assert [hit.title for hit in knowledge_search(query="refund")] == ["Refunds", "General"]


def test_message_retrieval_ranks_with_ts_rank_before_the_given_seq():
    conversation = new_conversation()
    first, _ = append(conversation, exchange("My refund for the refund request, refund please", "Ok."))
    second, _ = append(conversation, exchange("Another refund question", "Ok."))

    found = default_retriever().retrieve(
        conversation_id=conversation.pk, query="refund", before_seq=second.seq + 1, limit=5
    )
    assert [pk for pk, _ in found] == [first.pk, second.pk]
    assert found[0][1] > found[1][1] > 0

    older = default_retriever().retrieve(
        conversation_id=conversation.pk, query="refund", before_seq=second.seq, limit=5
    )
    assert [pk for pk, _ in older] == [first.pk]
