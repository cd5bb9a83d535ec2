"""The full-text engine behind one interface: SQLite FTS5 (bm25) or PostgreSQL text search
(tsvector expressions under GIN indexes, ts_rank), chosen by the database vendor.

Two collections are searched:
- passages of the knowledge base (`Passage`), for the `search_knowledge_base` tool;
- the items of one conversation (`conversations.Message`), for the history retriever.

Where the index lives:
- SQLite: two FTS5 tables, `knowledge_passage_fts` and `knowledge_message_fts`, whose
  rowid is the passage or message id. Inserts are explicit (`index_passages`,
  `index_messages`, called in the writer's transaction); triggers created by this app's
  migration remove or rewrite an index row when its source row is deleted or edited, so
  the index follows every delete (cascades and test flushes included).
- PostgreSQL: passages carry a generated, stored `search_vector` column under a GIN
  index (kept current by PostgreSQL; `index_passages` is a no-op); conversation items
  get a row with a stored tsvector in `knowledge_messageindexentry` (`index_messages`,
  in the writer's transaction), removed by its foreign key's cascade and rewritten by a
  trigger when the item is edited. Stored vectors matter: ranking recomputed from an
  expression costs a `to_tsvector` per candidate row.

User text never reaches the engine's query syntax: `search_terms` keeps only words
(letters and digits), drops stop words, and each engine receives the terms quoted
(FTS5) or as plain lexemes (PostgreSQL), OR-ed together for recall and ranked by bm25 /
ts_rank for precision. Operators, quotes, `*`, `NEAR`, parentheses, `-` and `:` are thus
plain characters that separate words; a query of only stop words or punctuation matches
nothing rather than everything.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from django.db import connection

from conversations.models import Message
from conversations.models.message import MessageKind

# The kinds the history selector may send; only these are indexed for retrieval.
MESSAGE_KINDS = (
    MessageKind.USER,
    MessageKind.ASSISTANT,
    MessageKind.FUNCTION_CALL,
    MessageKind.FUNCTION_OUTPUT,
    MessageKind.STAFF,
)
MAX_TERMS = 16
MAX_TERM_CHARS = 48
MAX_INDEXED_CHARS = 20_000

PG_CONFIG = "'english'::regconfig"

_WORD = re.compile(r"[^\W_]+")
_STOPWORD_TEXT = """a about above after again against all am an and any are aren as at be because been
    before being below between both but by can cannot could did didn do does doesn doing don
    down during each few for from further had has have having he her here hers herself him
    himself his how i if in into is isn it its itself just let me more most my myself no nor
    not now of off on once only or other ought our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was wasn we were what when where which
    while who whom why will with won would you your yours yourself yourselves near hi hello
    hey please thanks thank ok okay yes also get got can't i'm i've i'd it's s t ll ve re m d
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def search_terms(text: str, limit: int = MAX_TERMS) -> list[str]:
    """The searchable words of user text: lower-cased letters/digits runs, no stop
    words, no duplicates. When there are more than `limit`, the most specific are kept
    (words with digits, then longer words), in their original order."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)[:MAX_TERM_CHARS]
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
    words = list(seen)
    if len(words) <= limit:
        return words
    keep = set(sorted(words, key=lambda w: (not any(c.isdigit() for c in w), -len(w)))[:limit])
    return [w for w in words if w in keep]


def _fts5_any(terms: list[str]) -> str:
    # Terms hold only letters and digits, so quoting cannot be escaped from.
    return " OR ".join(f'"{term}"' for term in terms)


def _conversation_token(conversation_id: Any) -> str:
    value = conversation_id if isinstance(conversation_id, uuid.UUID) else uuid.UUID(str(conversation_id))
    return "c" + value.hex


def _message_body(message: Message) -> str:
    return f"{message.text} {message.tool_arguments}"[:MAX_INDEXED_CHARS]


class FullTextEngine(Protocol):
    vendor: str

    def index_passages(self, passages: Iterable[Any]) -> None: ...

    def search_passages(self, terms: list[str], limit: int) -> list[tuple[int, float]]: ...

    def index_messages(self, messages: Iterable[Message]) -> None: ...

    def search_messages(
        self, conversation_id: Any, terms: list[str], before_seq: int, limit: int
    ) -> list[tuple[int, float]]: ...

    def rebuild(self) -> None: ...


# History search ranks the newest this many items of a conversation (by seq) before the
# current message; older items are reached by the semantic ranking and the customer
# facts. 600-item conversations are searched whole.
SEARCH_WINDOW = 2_000


def _window_floor_id(conversation_id: Any, before_seq: int) -> int:
    """The id of the oldest item in the search window (0: the whole conversation)."""
    if before_seq <= SEARCH_WINDOW:
        return 0
    first = (Message.objects.filter(conversation_id=conversation_id, seq__gte=before_seq - SEARCH_WINDOW)
             .order_by("seq").values_list("id", flat=True).first())
    return first or 0


class SqliteFullText:
    """FTS5 tables with the porter stemmer; bm25 scores (lower is better) are negated so
    higher is better everywhere."""

    vendor = "sqlite"

    def index_passages(self, passages: Iterable[Any]) -> None:
        rows = [(p.pk, p.title, p.heading, p.text) for p in passages]
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO knowledge_passage_fts(rowid, title, heading, body) VALUES (%s, %s, %s, %s)",
                    rows,
                )

    def search_passages(self, terms: list[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rowid, rank FROM knowledge_passage_fts "
                "WHERE knowledge_passage_fts MATCH %s AND rank MATCH 'bm25(4.0, 2.0, 1.0)' "
                "ORDER BY rank LIMIT %s",
                [_fts5_any(terms), limit],
            )
            return [(pk, round(-rank, 4)) for pk, rank in cursor.fetchall()]

    def index_messages(self, messages: Iterable[Message]) -> None:
        rows = [
            (m.pk, _message_body(m), _conversation_token(m.conversation_id), m.seq)
            for m in messages
            if m.kind in MESSAGE_KINDS
        ]
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO knowledge_message_fts(rowid, body, conv, seq) VALUES (%s, %s, %s, %s)",
                    rows,
                )

    def search_messages(
        self, conversation_id: Any, terms: list[str], before_seq: int, limit: int
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        # The conversation is a token of its own column, so FTS5 intersects doclists
        # instead of scanning every conversation's matches. Ranking reads every match it
        # is given, so it is given the newest `SEARCH_WINDOW` items only, as a rowid
        # range (FTS5 seeks its doclists to it): a conversation's ids grow with its seqs.
        match = f'conv : "{_conversation_token(conversation_id)}" AND body : ({_fts5_any(terms)})'
        floor = _window_floor_id(conversation_id, before_seq)
        with connection.cursor() as cursor:
            cursor.execute(
                # `rank MATCH` sets bm25's column weights (the conversation column
                # scores nothing); ORDER BY rank lets FTS5 sort by it natively.
                "SELECT rowid, rank FROM knowledge_message_fts "
                "WHERE knowledge_message_fts MATCH %s AND rank MATCH 'bm25(1.0, 0.0)' "
                "AND rowid >= %s AND seq < %s ORDER BY rank LIMIT %s",
                [match, floor, before_seq, limit],
            )
            return [(pk, round(-rank, 4)) for pk, rank in cursor.fetchall()]

    def rebuild(self) -> None:
        kinds = ", ".join(f"'{k}'" for k in MESSAGE_KINDS)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM knowledge_passage_fts")
            cursor.execute(
                "INSERT INTO knowledge_passage_fts(rowid, title, heading, body) "
                "SELECT p.id, p.title, p.heading, p.text FROM knowledge_passage p "
                "JOIN knowledge_document d ON d.id = p.document_id WHERE d.is_active"
            )
            cursor.execute("DELETE FROM knowledge_message_fts")
            cursor.execute(
                "INSERT INTO knowledge_message_fts(rowid, body, conv, seq) "
                f"SELECT id, substr(text || ' ' || tool_arguments, 1, {MAX_INDEXED_CHARS}), "
                f"'c' || conversation_id, seq FROM conversations_message WHERE kind IN ({kinds})"
            )


class PostgresFullText:
    """Stored tsvectors ranked by ts_rank: passages have a generated `search_vector`
    column under a GIN index; conversation items have a row each in
    `knowledge_messageindexentry`, searched within one conversation through its
    (conversation_id, seq) index."""

    vendor = "postgresql"

    def index_passages(self, passages: Iterable[Any]) -> None:
        return None  # the generated column follows the row

    def search_passages(self, terms: list[str], limit: int) -> list[tuple[int, float]]:
        if not terms:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, ts_rank(search_vector, q) AS score "
                f"FROM knowledge_passage, to_tsquery({PG_CONFIG}, %s) q "
                "WHERE search_vector @@ q "
                "AND document_id IN (SELECT id FROM knowledge_document WHERE is_active) "
                "ORDER BY score DESC, id LIMIT %s",
                [" | ".join(terms), limit],
            )
            return [(pk, round(float(score), 4)) for pk, score in cursor.fetchall()]

    def index_messages(self, messages: Iterable[Message]) -> None:
        rows = [
            (m.pk, m.conversation_id, m.seq, _message_body(m))
            for m in messages
            if m.kind in MESSAGE_KINDS
        ]
        if rows:
            with connection.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO knowledge_messageindexentry (message_id, conversation_id, seq, vector) "
                    f"VALUES (%s, %s, %s, to_tsvector({PG_CONFIG}, %s))",
                    rows,
                )

    def search_messages(
        self, conversation_id: Any, terms: list[str], before_seq: int, limit: int
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                # The newest `SEARCH_WINDOW` items only (the (conversation_id, seq)
                # index), so the rows ranked do not grow with the conversation.
                "SELECT message_id, ts_rank(vector, q) AS score "
                f"FROM knowledge_messageindexentry, to_tsquery({PG_CONFIG}, %s) q "
                "WHERE conversation_id = %s AND seq < %s AND seq >= %s AND vector @@ q "
                "ORDER BY score DESC, seq DESC LIMIT %s",
                [" | ".join(terms), conversation_id, before_seq, before_seq - SEARCH_WINDOW, limit],
            )
            return [(pk, round(float(score), 4)) for pk, score in cursor.fetchall()]

    def rebuild(self) -> None:
        kinds = ", ".join(f"'{k}'" for k in MESSAGE_KINDS)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM knowledge_messageindexentry")
            cursor.execute(
                "INSERT INTO knowledge_messageindexentry (message_id, conversation_id, seq, vector) "
                f"SELECT id, conversation_id, seq, to_tsvector({PG_CONFIG}, "
                f"left(text || ' ' || tool_arguments, {MAX_INDEXED_CHARS})) "
                f"FROM conversations_message WHERE kind IN ({kinds})"
            )
            cursor.execute("REINDEX INDEX knowledge_passage_tsv")


_ENGINES: dict[str, FullTextEngine] = {"sqlite": SqliteFullText(), "postgresql": PostgresFullText()}


def full_text() -> FullTextEngine | None:
    """The engine for the default database, or None for a vendor without one."""
    return _ENGINES.get(connection.vendor)
