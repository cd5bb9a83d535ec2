"""Semantic history through the provider's embeddings endpoint
(`SUPPORT_HISTORY_EMBEDDINGS=provider`): the real `openai` SDK posts the items to a fake
endpoint, the vectors are stored per item, and a question sharing no word with an old
fact recalls it. When the endpoint fails, nothing breaks: history is full text; when it
hangs, a selection waits for it only briefly, and not at all while it keeps failing."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import openai
import pytest

from conversations.agent.history import select_history
from conversations.knowledge import history_semantic
from conversations.knowledge.history_bench import content_words
from conversations.knowledge.models import MessageEmbedding
from tests.knowledge.helpers import append, exchange, filler, new_conversation
from tests.knowledge.test_semantic import _FakeEmbeddings

pytestmark = pytest.mark.django_db

FACT = "I want my money back for the cracked kettle."
QUESTION = "Has the refund gone through?"


class _MeaningOnly(_FakeEmbeddings):
    """Vectors from the fake's meaning axes only (refund = money back, ...): every other
    word counts for nothing, so the filler is unlike everything and no hash is involved."""

    def vector(self, text: str) -> np.ndarray:
        vector = np.zeros(8, dtype=np.float32)
        for word in text.lower().replace(".", " ").replace("?", " ").split():
            if word.rstrip("s") in self.AXES:
                vector[self.AXES[word.rstrip("s")]] += 1
        vector[7] += 0.01  # never all zero
        return vector


@pytest.fixture
def endpoint(settings: Any):
    fake = _MeaningOnly()
    options = settings.SUPPORT_PLATFORM
    settings.SUPPORT_PLATFORM = {
        **options, "HISTORY_EMBEDDINGS": "provider", "HISTORY_EMBED_BACKGROUND": False,
        "EMBEDDINGS_MODEL": "toy-embedding", "PROVIDER_API_KEY": "test-key", "PROVIDER_BASE_URL": fake.base_url,
        "PROVIDER_MAX_RETRIES": 0, "PROVIDER_TIMEOUT_SECONDS": 3.0,
    }
    history_semantic.clear_caches()
    yield fake
    settings.SUPPORT_PLATFORM = options
    history_semantic.clear_caches()
    fake.server.shutdown()
    fake.server.server_close()


def _ask(conversation: Any, *, endpoint_down: bool = False) -> set[int]:
    (current,) = append(conversation, [{"kind": "user", "text": QUESTION}])
    if endpoint_down:  # the background thread logs this and tries again on the next item
        with pytest.raises(openai.APIError):
            history_semantic.embed_pending(conversation.pk)
    else:
        history_semantic.embed_pending(conversation.pk)
    selection = select_history(conversation_id=conversation.pk, current=current, budget=400)
    return {item.message_id for item in selection.items}


def test_the_provider_embeds_history_and_a_paraphrase_recalls_its_fact(endpoint):
    assert not content_words(FACT) & content_words(QUESTION)
    conversation = new_conversation()
    fact, _ = append(conversation, exchange(FACT, "I am sorry about the kettle; let me look into it."))
    append(conversation, filler(120))

    chosen = _ask(conversation)

    assert fact.pk in chosen
    assert endpoint.requests and {r["model"] for r in endpoint.requests} == {"toy-embedding"}
    stored = MessageEmbedding.objects.filter(conversation_id=conversation.pk)
    assert stored.count() == conversation.messages.count()
    assert {len(bytes(e.vector)) for e in stored} == {8 * 4}


def test_a_failing_endpoint_leaves_history_to_full_text(endpoint):
    endpoint.fail = True
    conversation = new_conversation()
    fact, _ = append(conversation, exchange(FACT, "I am sorry about the kettle; let me look into it."))
    append(conversation, filler(120))

    chosen = _ask(conversation, endpoint_down=True)

    assert endpoint.requests  # it was asked, and failed
    assert not MessageEmbedding.objects.filter(conversation_id=conversation.pk).exists()
    assert fact.pk not in chosen  # no shared word: full text cannot find it
    assert chosen  # but the selection still sends the recent history


class _Hanging(_MeaningOnly):
    """Once `hang` is set, every request waits for `release` (as a stuck endpoint does)."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.answered_while_hanging = 0

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.hang.is_set():
            self.release.wait(30)
            self.answered_while_hanging += 1
        return super().answer(body)


def test_a_stuck_endpoint_costs_one_selection_its_short_timeout_then_is_left_alone(endpoint, settings):
    # Given a conversation whose items the endpoint embedded while it worked
    conversation = new_conversation()
    fact, _ = append(conversation, exchange(FACT, "I am sorry about the kettle; let me look into it."))
    append(conversation, filler(60))
    history_semantic.embed_pending(conversation.pk)
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "EMBEDDINGS_QUERY_TIMEOUT_SECONDS": 0.3}
    stuck = _Hanging()
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "PROVIDER_BASE_URL": stuck.base_url}
    stuck.hang.set()
    try:
        # When the endpoint stops answering, a selection gives up on it quickly...
        (first,) = append(conversation, [{"kind": "user", "text": QUESTION}])
        selection = select_history(conversation_id=conversation.pk, current=first, budget=400)
        assert len(stuck.requests) == 1 and stuck.answered_while_hanging == 0  # still stuck, we moved on
        assert selection.items and fact.pk not in {i.message_id for i in selection.items}  # full text
        # ...and the next one does not wait for it at all
        (second,) = append(conversation, [{"kind": "user", "text": "Any news about my money?"}])
        assert select_history(conversation_id=conversation.pk, current=second, budget=400).items
        assert len(stuck.requests) == 1
    finally:
        stuck.release.set()
        stuck.server.shutdown()
        stuck.server.server_close()
