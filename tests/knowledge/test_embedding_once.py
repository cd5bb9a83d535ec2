"""A text is embedded once even when two threads need it at the same moment: the
history worker embedding a customer's new message and the turn's selection embedding it
as its query. The second waits for the first; if the first fails, it embeds it itself."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conversations.knowledge import history_semantic


class GatedEmbedder:
    """Counts what it embeds; the first call waits for `release` (and fails if told to)."""

    key = "test-gated"

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: Counter[str] = Counter()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_first = fail_first
        self._first = True
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            first, self._first = self._first, False
            self.calls.update(texts)
        if first:
            self.entered.set()
            assert self.release.wait(10)
            if self.fail_first:
                raise RuntimeError("the model failed")
        return np.vstack([np.full(4, float(len(t)), np.float32) for t in texts])


@pytest.fixture(autouse=True)
def _fresh_cache():
    history_semantic.clear_caches()
    yield
    history_semantic.clear_caches()


def _both(embedder: GatedEmbedder) -> tuple:
    with ThreadPoolExecutor(2) as pool:
        worker = pool.submit(history_semantic.embed_cached, embedder, ["Where is my parcel?"])
        assert embedder.entered.wait(10)
        selection = pool.submit(history_semantic.embed_cached, embedder, ["Where is my parcel?", "Hello"])
        # The selection embeds what nobody else is embedding, then waits for the rest
        while embedder.calls["Hello"] == 0:
            threading.Event().wait(0.01)
        embedder.release.set()
        return worker, selection.result(10)


def test_a_text_two_threads_need_at_once_is_embedded_once():
    embedder = GatedEmbedder()

    worker, selection = _both(embedder)

    assert worker.result(10).tolist() == [[19.0] * 4]
    assert selection.tolist() == [[19.0] * 4, [5.0] * 4]
    assert embedder.calls == Counter({"Where is my parcel?": 1, "Hello": 1})


def test_when_the_first_thread_fails_the_waiting_one_embeds_the_text_itself():
    embedder = GatedEmbedder(fail_first=True)

    worker, selection = _both(embedder)

    with pytest.raises(RuntimeError):
        worker.result(10)
    assert selection.tolist() == [[19.0] * 4, [5.0] * 4]
    assert embedder.calls["Where is my parcel?"] == 2
