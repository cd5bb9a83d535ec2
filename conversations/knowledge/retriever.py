"""`FullTextRetriever`: the history selector's retriever, backed by the same full-text
engine as the knowledge base, over the items of one conversation.

`items_append` calls `index(messages)` inside the transaction that stores them, so the
index never disagrees with the conversation. On a database without a full-text engine
it falls back to the selector's own keyword retriever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from conversations.knowledge.ranking import search_terms
from conversations.knowledge.search import full_text
from conversations.models import Message
from conversations.retrieval import KeywordRetriever


class FullTextRetriever:
    def __init__(self) -> None:
        self._fallback = KeywordRetriever()

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int, context: Sequence[str] = ()
    ) -> list[tuple[int, float]]:
        """(message id, score) of the items older than `before_seq` that best match the
        query's words, best first (bm25 on SQLite, ts_rank on PostgreSQL)."""
        engine = full_text()
        if engine is None:
            return self._fallback.retrieve(
                conversation_id=conversation_id, query=query, before_seq=before_seq, limit=limit
            )
        return engine.search_messages(conversation_id, search_terms(query), before_seq, limit)

    def index(self, messages: Iterable[Message]) -> None:
        """Index newly stored items. Precondition: inside the transaction that stored them."""
        engine = full_text()
        if engine is not None:
            engine.index_messages(messages)
