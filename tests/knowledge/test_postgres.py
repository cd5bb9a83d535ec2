"""PostgreSQL engine specifics (scale mode). These run when the suite runs against
PostgreSQL, e.g. `DATABASE_URL=postgres://postgres@127.0.0.1:5432/support pytest tests/knowledge`;
every other knowledge test runs there too, through the same interface."""

from __future__ import annotations

import pytest
from django.db import connection

from conversations.agent.history import default_retriever
from conversations.knowledge.search import PG_MESSAGE_VECTOR, PG_PASSAGE_VECTOR, full_text
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_create
from tests.knowledge.helpers import append, exchange, new_conversation

pytestmark = [
    pytest.mark.scale,
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only: run with DATABASE_URL=postgres://... to test the scale-mode engine",
    ),
]


def _index_names() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'knowledge_%%_tsv'")
        return {row[0] for row in cursor.fetchall()}


def test_the_engine_is_postgres_text_search():
    assert full_text().vendor == "postgresql"
    assert _index_names() == {"knowledge_passage_tsv", "knowledge_message_tsv"}


@pytest.mark.parametrize(
    ("table", "vector", "index"),
    [
        ("knowledge_passage", PG_PASSAGE_VECTOR, "knowledge_passage_tsv"),
        ("conversations_message", PG_MESSAGE_VECTOR, "knowledge_message_tsv"),
    ],
)
def test_queries_can_use_the_gin_indexes(table, vector, index):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            f"EXPLAIN SELECT id FROM {table} WHERE {vector} @@ to_tsquery('english'::regconfig, 'refund')"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan


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
