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

User text never reaches the engine's query syntax: `ranking.query_words` keeps only
words (letters and digits), drops stop words; `passage_terms` chooses among them by
their document frequency in the index (fts5vocab on SQLite, ts_stat on PostgreSQL,
cached per process until the knowledge base changes), and each engine receives the terms quoted
(FTS5) or as plain lexemes (PostgreSQL), OR-ed together for recall and ranked by bm25 /
ts_rank for precision. Operators, quotes, `*`, `NEAR`, parentheses, `-` and `:` are thus
plain characters that separate words; a query of only stop words or punctuation matches
nothing rather than everything.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db import connection
from django.db.models import Count, Max

from conversations.knowledge.models import Document
from conversations.knowledge.ranking import MAX_TERMS, STOPWORDS, query_words, rare_terms, search_terms
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
MAX_INDEXED_CHARS = 20_000

PG_CONFIG = "'english'::regconfig"

# bm25 column weights (title, heading, body) on SQLite; ts_rank weights of the A
# (title and heading) and B (body) labels on PostgreSQL, and optionally its length
# normalization (0, the default, when omitted). Tuned on the tuning split of
# the labelled set (`manage.py bench_knowledge_search`, docs/knowledge.md).
SQLITE_WEIGHTS = (4.0, 2.0, 1.0)
POSTGRES_WEIGHTS = (1.0, 0.7)

__all__ = ["STOPWORDS", "MAX_TERMS", "search_terms"]  # moved to `ranking`; kept importable here


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

    def search_passages(
        self, terms: list[str], limit: int, weights: tuple[float, ...] | None = None
    ) -> list[tuple[int, float]]: ...

    def passage_statistics(self) -> tuple[int, dict[str, int]]:
        """(searchable passages, document frequency of each indexed term)."""

    def stems(self, words: list[str]) -> dict[str, str]:
        """Each word as the index stores it (stemmed; "" for a word the engine drops)."""

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
    """The id of the oldest item in the search window, the `SEARCH_WINDOW` items before
    `before_seq` (0: the whole conversation). A `before_seq` past the conversation's end
    ("everything") counts back from its newest item."""
    if before_seq <= SEARCH_WINDOW:
        return 0
    items = Message.objects.filter(conversation_id=conversation_id)
    first = items.filter(seq__gte=before_seq - SEARCH_WINDOW).order_by("seq").values_list("id", "seq").first()
    if first is not None and first[1] < before_seq:
        return first[0]
    newest = items.filter(seq__lt=before_seq).order_by("-seq").values_list("seq", flat=True).first()
    if newest is None or newest < SEARCH_WINDOW:
        return 0
    return items.filter(seq__gte=newest + 1 - SEARCH_WINDOW).order_by("seq").values_list("id", flat=True).first() or 0


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

    def search_passages(
        self, terms: list[str], limit: int, weights: tuple[float, ...] | None = None
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        title, heading, body = (float(w) for w in (weights or SQLITE_WEIGHTS))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT rowid, rank FROM knowledge_passage_fts "
                "WHERE knowledge_passage_fts MATCH %s AND rank MATCH %s "
                "ORDER BY rank LIMIT %s",
                [_fts5_any(terms), f"bm25({title}, {heading}, {body})", limit],
            )
            return [(pk, round(-rank, 4)) for pk, rank in cursor.fetchall()]

    def passage_statistics(self) -> tuple[int, dict[str, int]]:
        # fts5vocab reads the index's own term list; a temp table is per connection
        # and holds no data, so it needs no migration.
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.knowledge_passage_vocab "
                "USING fts5vocab(main, knowledge_passage_fts, row)"
            )
            cursor.execute("SELECT term, doc FROM temp.knowledge_passage_vocab")
            frequencies = dict(cursor.fetchall())
            cursor.execute("SELECT count(*) FROM knowledge_passage_fts")
            (total,) = cursor.fetchone()
        return total, frequencies

    def stems(self, words: list[str]) -> dict[str, str]:
        # The index's own tokenizer (porter over unicode61), run on the words through an
        # empty temp FTS5 table whose fts5vocab lists the tokens it produced.
        found = dict.fromkeys(words, "")
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.knowledge_stem_fts USING fts5("
                "w, tokenize = 'porter unicode61 remove_diacritics 2')"
            )
            cursor.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.knowledge_stem_vocab "
                "USING fts5vocab(temp, knowledge_stem_fts, instance)"
            )
            cursor.execute("DELETE FROM temp.knowledge_stem_fts")
            cursor.executemany(
                "INSERT INTO temp.knowledge_stem_fts(rowid, w) VALUES (%s, %s)",
                list(enumerate(words, start=1)),
            )
            cursor.execute("SELECT doc, term FROM temp.knowledge_stem_vocab ORDER BY doc, offset")
            for doc, term in cursor.fetchall():
                if not found[words[doc - 1]]:
                    found[words[doc - 1]] = term
            cursor.execute("DELETE FROM temp.knowledge_stem_fts")
        return found

    def index_messages(self, messages: Iterable[Message]) -> None:
        tokens: dict[Any, str] = {}  # a bulk append's items share one conversation
        rows = []
        for m in messages:
            if m.kind in MESSAGE_KINDS:
                token = tokens.get(m.conversation_id)
                if token is None:
                    token = tokens[m.conversation_id] = _conversation_token(m.conversation_id)
                rows.append((m.pk, _message_body(m), token, m.seq))
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

    def search_passages(
        self, terms: list[str], limit: int, weights: tuple[float, ...] | None = None
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        label_a, label_b, *rest = (float(w) for w in (weights or POSTGRES_WEIGHTS))
        normalization = int(rest[0]) if rest else 0
        with connection.cursor() as cursor:
            cursor.execute(
                # ts_rank's weights are for labels {D, C, B, A}; only A and B are used.
                # Normalization 0 ignores the passage's length; 1 divides by 1 + log(length).
                "SELECT id, ts_rank(%s::float4[], search_vector, q, %s::int) AS score "
                f"FROM knowledge_passage, to_tsquery({PG_CONFIG}, %s) q "
                "WHERE search_vector @@ q "
                "AND document_id IN (SELECT id FROM knowledge_document WHERE is_active) "
                "ORDER BY score DESC, id LIMIT %s",
                [[0.1, 0.2, label_b, label_a], normalization, " | ".join(terms), limit],
            )
            return [(pk, round(float(score), 4)) for pk, score in cursor.fetchall()]

    def passage_statistics(self) -> tuple[int, dict[str, int]]:
        active = (
            "SELECT p.search_vector FROM knowledge_passage p "
            "JOIN knowledge_document d ON d.id = p.document_id WHERE d.is_active"
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT word, ndoc FROM ts_stat(%s)", [active])
            frequencies = dict(cursor.fetchall())
            cursor.execute(f"SELECT count(*) FROM ({active}) a")
            (total,) = cursor.fetchone()
        return total, frequencies

    def stems(self, words: list[str]) -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT u.w, coalesce((tsvector_to_array(to_tsvector({PG_CONFIG}, u.w)))[1], '') "
                "FROM unnest(%s::text[]) AS u(w)",
                [words],
            )
            return dict(cursor.fetchall())

    def index_messages(self, messages: Iterable[Message]) -> None:
        ids = [m.pk for m in messages if m.kind in MESSAGE_KINDS]
        if ids:
            # One statement that reads the items' text where it already is (they were
            # inserted in this transaction), the body made as `rebuild` makes it: a
            # statement per item cost the server more than the `to_tsvector`s, and sending
            # the text again cost the client its quoting.
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO knowledge_messageindexentry (message_id, conversation_id, seq, vector) "
                    f"SELECT id, conversation_id, seq, to_tsvector({PG_CONFIG}, "
                    f"left(text || ' ' || tool_arguments, {MAX_INDEXED_CHARS})) "
                    "FROM conversations_message WHERE id = ANY(%s::bigint[])",
                    [ids],
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
                # Counted back from the newest item before `before_seq`, so a
                # `before_seq` past the end ("everything") still finds the newest items.
                "WHERE conversation_id = %s AND seq < %s AND vector @@ q AND seq > ("
                "SELECT coalesce(max(seq), 0) FROM knowledge_messageindexentry "
                "WHERE conversation_id = %s AND seq < %s) - %s "
                "ORDER BY score DESC, seq DESC LIMIT %s",
                [" | ".join(terms), conversation_id, before_seq, conversation_id, before_seq, SEARCH_WINDOW, limit],
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


def knowledge_version() -> tuple[Any, ...]:
    """Changes whenever the searchable passages may have: every change goes through a
    document save (which sets `indexed_at`), a delete (which lowers the count) or
    `knowledge_reindex` (which sets `indexed_at` when it re-embeds), so the documents
    table alone, a few rows, says when a per-process cache is stale."""
    stats = Document.objects.aggregate(count=Count("id"), changed=Max("indexed_at"))
    return (connection.vendor, stats["count"], stats["changed"])


@dataclass(frozen=True)
class _Statistics:
    version: tuple[Any, ...]
    total: int
    frequencies: dict[str, int]


_statistics: dict[str, _Statistics] = {}
_stem_memo: dict[tuple[str, str], str] = {}
_cache_lock = threading.Lock()
_STEM_MEMO_LIMIT = 200_000


def passage_frequencies(engine: FullTextEngine, words: list[str]) -> tuple[int, dict[str, int]]:
    """(searchable passages, each word's document frequency among them), from the
    index itself; the index's term statistics are read once per process and again only
    after the knowledge base changed (`knowledge_version`), stems are remembered."""
    version = knowledge_version()
    with _cache_lock:
        stats = _statistics.get(engine.vendor)
    if stats is None or stats.version != version:
        total, frequencies = engine.passage_statistics()
        stats = _Statistics(version, total, frequencies)
        with _cache_lock:
            _statistics[engine.vendor] = stats
    with _cache_lock:
        unknown = [w for w in words if (engine.vendor, w) not in _stem_memo]
    if unknown:
        stems = engine.stems(unknown)
        with _cache_lock:
            if len(_stem_memo) > _STEM_MEMO_LIMIT:
                _stem_memo.clear()
            _stem_memo.update(((engine.vendor, w), stem) for w, stem in stems.items())
    with _cache_lock:
        stems_of = {w: _stem_memo.get((engine.vendor, w), "") for w in words}
    return stats.total, {w: stats.frequencies.get(stem, 0) if stem else 0 for w, stem in stems_of.items()}


def passage_terms(text: str) -> list[str]:
    """The words of `text` to search the knowledge base for: all its useful words,
    chosen by their rarity among the passages (`ranking.rare_terms`). Without a
    full-text engine, `query_words` capped like history's terms."""
    words = query_words(text)
    engine = full_text()
    if engine is None or not words:
        return search_terms(text)
    total, frequencies = passage_frequencies(engine, words)
    return rare_terms(words, frequencies, total)


_titles: dict[str, tuple[tuple[Any, ...], dict[frozenset[str], int]]] = {}


def title_match(text: str) -> int | None:
    """The id of the active document whose title has exactly the words of `text`
    (case, punctuation, order and stop words aside), or None. Titles are read once
    per process and again after the knowledge base changed."""
    words = frozenset(query_words(text))
    if not words:
        return None
    version = knowledge_version()
    with _cache_lock:
        cached = _titles.get(connection.vendor)
    if cached is None or cached[0] != version:
        titles: dict[frozenset[str], int] = {}
        for pk, title in Document.objects.filter(is_active=True).order_by("id").values_list("id", "title"):
            titles.setdefault(frozenset(query_words(title)), pk)
        cached = (version, titles)
        with _cache_lock:
            _titles[connection.vendor] = cached
    return cached[1].get(words)


_ENGINES: dict[str, FullTextEngine] = {"sqlite": SqliteFullText(), "postgresql": PostgresFullText()}


def full_text() -> FullTextEngine | None:
    """The engine for the default database, or None for a vendor without one."""
    return _ENGINES.get(connection.vendor)
