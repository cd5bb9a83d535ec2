"""The background embedding thread yields to the turns: it runs at a lower priority,
and after each batch pauses long enough to stay within `HISTORY_EMBED_CPU_SHARE` of a
core, so a backlog (a returning imported customer, a burst) is spread over time; and a
long backlog takes turns with the other conversations instead of holding them up."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

from conversations.knowledge import history_semantic
from conversations.knowledge.models import MessageEmbedding
from tests.knowledge.helpers import append, new_conversation


def test_the_embedding_thread_runs_at_a_lower_priority_than_the_others():
    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread priorities are a Linux feature")
    seen: list[int] = []

    def embedding_thread() -> None:
        history_semantic._lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=embedding_thread)
    thread.start()
    thread.join()

    assert seen == [os.getpriority(os.PRIO_PROCESS, 0) + history_semantic.EMBED_NICE]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.parametrize(("share", "pause"), [(0.5, 0.3), (0.25, 0.9), (1.0, None)])
def test_after_a_batch_it_pauses_to_keep_within_its_share_of_a_core(monkeypatch, settings, share, pause):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "HISTORY_EMBED_CPU_SHARE": share}
    clock = iter([10.0, 10.3])  # the batch took 0.3 s of this thread's CPU
    monkeypatch.setattr(history_semantic.time, "thread_time", lambda: next(clock))
    monkeypatch.setattr(history_semantic, "embed_pending", lambda conversation_id, limit: 7)
    pauses: list[float] = []
    monkeypatch.setattr(history_semantic.time, "sleep", pauses.append)

    assert history_semantic._embed_within_share("some-conversation") == 7

    assert pauses == ([] if pause is None else [pytest.approx(pause)])


class _LoggingEmbedder:
    """A cheap stand-in for the model (the provider of vectors is not what is tested):
    logs the texts of each batch."""

    key = "test-logging"

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return np.ones((len(texts), 4), np.float32) / 2

    embed_query = embed


@pytest.mark.django_db(transaction=True)
def test_a_long_backlog_takes_turns_with_the_other_conversations(monkeypatch, settings):
    # Given an imported conversation of 600 items without vectors, and a live one
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "HISTORY_EMBED_CPU_SHARE": 1.0}
    embedder = _LoggingEmbedder()
    monkeypatch.setattr(history_semantic, "history_embedder", lambda: embedder)
    backlog, live = new_conversation(), new_conversation()
    append(backlog, [{"kind": "user", "text": f"old message {n}"} for n in range(600)])
    append(live, [{"kind": "user", "text": "a new message"}])
    history_semantic.clear_caches()

    # When the thread is asked for both, the long one first
    history_semantic.worker.schedule(backlog.pk)
    history_semantic.worker.schedule(live.pk)
    assert history_semantic.worker.wait_idle(30)

    # Then the live conversation's item was embedded before the backlog was through
    texts = [text for batch in embedder.batches for text in batch]
    assert "a new message" in texts and "old message 0" in texts
    assert texts.index("a new message") < texts.index("old message 0")
    assert MessageEmbedding.objects.filter(conversation_id=backlog.pk).count() == 600
