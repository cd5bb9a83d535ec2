"""The pluggable retriever: finds a conversation's older items relevant to a query.

The history selector (`conversations.agent.history`) asks `default_retriever()` for
relevant items; `items_append` calls its `index(messages)` hook, when it has one, in the
transaction that stores them. The default, `KeywordRetriever`, scores keyword overlap
in SQL; the knowledge app installs its full-text one with `set_default_retriever` in
its `ready()`. It lives in the core because the writer indexes through it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

from django.db.models import Q

from conversations.models import Message
from conversations.models.message import MessageKind

# The kinds of item a model is ever sent.
MODEL_KINDS = (
    MessageKind.USER,
    MessageKind.ASSISTANT,
    MessageKind.FUNCTION_CALL,
    MessageKind.FUNCTION_OUTPUT,
    MessageKind.STAFF,
)


class Retriever(Protocol):
    """Finds older items relevant to a query. A retriever that keeps its own index may
    also define `index(messages)`; `items_append` calls it in the same transaction as
    the items are stored."""

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int, context: Sequence[str] = ()
    ) -> list[tuple[int, float]]:
        """(message id, relevance score) pairs for items older than `before_seq`.
        `context` is the text of the last exchanges before the query, newest first
        (a semantic retriever folds it into its query; word matching ignores it)."""


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{2,}")
_STOP = frozenset(
    (
        "the", "and", "for", "you", "your", "are", "was", "were", "this", "that", "with",
        "have", "has", "had", "not", "but", "can", "could", "would", "should", "what", "when",
        "where", "which", "who", "how", "why", "about", "from", "they", "them", "their",
        "there", "here", "then", "than", "into", "onto", "our", "ours", "its", "it's", "i'm",
        "i've", "don't", "didn't", "does", "did", "just", "also", "any", "all", "some", "more",
        "most", "very", "been", "being", "will", "shall", "may", "might", "must", "need",
        "want", "like", "know", "tell", "please", "thanks", "thank", "hello", "help",
    )
)


def keywords(text: str, limit: int = 12) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("._-")
        if len(word) >= 3 and word not in _STOP:
            seen.setdefault(word, None)
    # Longer words and numbers are the most specific; keep those when there are many.
    ranked = sorted(seen, key=lambda w: (not any(c.isdigit() for c in w), -len(w)))
    return ranked[:limit]


class KeywordRetriever:
    """Scores older items by how many of the query's keywords they contain, weighting
    rare keywords higher (an IDF over the matches). Runs in SQL with LIKE over the
    newest matching items, the most specific keywords first."""

    max_keywords = 6

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int, context: Sequence[str] = ()
    ) -> list[tuple[int, float]]:
        words = keywords(query, limit=self.max_keywords)
        if not words:
            return []
        condition = Q()
        for word in words:
            condition |= Q(text__icontains=word) | Q(tool_arguments__icontains=word)
        rows = list(
            Message.objects.filter(
                condition, conversation_id=conversation_id, seq__lt=before_seq, kind__in=MODEL_KINDS
            )
            .order_by("-seq")
            .values_list("id", "text", "tool_arguments")[: limit * 4]
        )
        if not rows:
            return []
        lowered = [(pk, (text + " " + args).lower()) for pk, text, args in rows]
        document_frequency = {w: sum(1 for _, t in lowered if w in t) for w in words}
        scored = []
        for pk, text in lowered:
            score = sum(
                math.log(1 + len(lowered) / document_frequency[w]) for w in words if w in text
            )
            if score > 0:
                scored.append((pk, round(score, 4)))
        scored.sort(key=lambda pair: -pair[1])
        return scored[:limit]


_default_retriever: Retriever = KeywordRetriever()


def default_retriever() -> Retriever:
    return _default_retriever


def set_default_retriever(retriever: Retriever) -> None:
    """Replace the retriever used when none is passed (the knowledge-base app does)."""
    global _default_retriever
    _default_retriever = retriever
