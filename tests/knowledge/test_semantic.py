"""Optional semantic ranking: off by default; with the offline model (all-MiniLM-L6-v2 from
its bundled weights, on NumPy) or the provider's embeddings endpoint, paraphrases find passages that
share no word with the query, fused with the full-text ranking; failures fall back to
full-text search; hostile input still never matches everything."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from conversations.knowledge.models import Passage
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_create, knowledge_reindex
from tests.knowledge.test_search_input import HOSTILE

pytestmark = pytest.mark.django_db

ARTICLES = {
    "Refunds": "You can return any unused item within 30 days for a full refund.",
    "Delivery": "Standard shipping takes 3-5 business days.",
    "Payment methods": "We accept Visa, Mastercard and PayPal.",
    "Password reset": "To reset your password, use Forgot password on the sign-in page.",
    "Gift cards": "Gift cards never expire.",
}


def _use(settings: Any, **options: Any) -> None:
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, **options}


def _corpus() -> None:
    for title, body in ARTICLES.items():
        document_create(title=title, body=body)


def _titles(query: str) -> list[str]:
    return [hit.title for hit in knowledge_search(query=query)]


def test_semantic_ranking_is_off_by_default(settings):
    assert settings.SUPPORT_PLATFORM["KNOWLEDGE_EMBEDDINGS"] == ""
    _corpus()

    assert not Passage.objects.filter(embedding__isnull=False).exists()
    assert _titles("How do I get my money back?") == []


@pytest.fixture
def offline_embeddings(settings: Any) -> None:
    _use(settings, KNOWLEDGE_EMBEDDINGS="offline")


def test_the_offline_model_finds_a_paraphrase(offline_embeddings):
    _corpus()

    assert {len(bytes(p.embedding)) for p in Passage.objects.all()} == {384 * 4}  # all-MiniLM-L6-v2, float32
    assert _titles("How do I get my money back?")[0] == "Refunds"
    assert _titles("shipping")[0] == "Delivery"  # full-text matches keep their weight


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_still_never_match_everything(offline_embeddings, query):
    _corpus()

    assert len(knowledge_search(query=query, limit=50)) < len(ARTICLES)


def test_reindex_embeds_passages_stored_while_it_was_off(settings):
    _corpus()
    _use(settings, KNOWLEDGE_EMBEDDINGS="offline")
    assert _titles("How do I get my money back?") == []

    knowledge_reindex()

    assert _titles("How do I get my money back?")[0] == "Refunds"


class _FakeEmbeddings:
    """An OpenAI-compatible /v1/embeddings endpoint with a toy model: words map to axes,
    and "money"/"back" share the axis of "refund"."""

    AXES = {"refund": 0, "money": 0, "back": 0, "shipping": 1, "parcel": 1, "password": 2, "card": 3}

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if fake.fail:
                    payload, status = {"error": {"message": "down", "type": "server_error"}}, 500
                else:
                    payload, status = fake.answer(body), 200
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def vector(self, text: str) -> np.ndarray:
        vector = np.zeros(8, dtype=np.float32)
        for word in text.lower().replace(".", " ").replace("?", " ").split():
            vector[self.AXES.get(word.rstrip("s"), 4 + hash(word) % 4)] += 1
        return vector

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, text in enumerate(texts):
            vector = self.vector(text)
            encoded: Any = vector.tolist()
            if body.get("encoding_format") == "base64":
                encoded = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}


@pytest.fixture
def provider_embeddings(settings: Any) -> Iterator[_FakeEmbeddings]:
    fake = _FakeEmbeddings()
    _use(
        settings, KNOWLEDGE_EMBEDDINGS="provider", EMBEDDINGS_MODEL="toy-embedding", PROVIDER_API_KEY="test-key",
        PROVIDER_BASE_URL=fake.base_url, PROVIDER_MAX_RETRIES=0, PROVIDER_TIMEOUT_SECONDS=3.0,
    )
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_provider_embeddings_rank_a_paraphrase(provider_embeddings):
    _corpus()

    assert provider_embeddings.requests[0]["model"] == "toy-embedding"
    assert {len(bytes(p.embedding)) for p in Passage.objects.all()} == {8 * 4}
    assert _titles("money back")[0] == "Refunds"


def test_a_failing_embeddings_endpoint_falls_back_to_full_text(provider_embeddings):
    provider_embeddings.fail = True
    _corpus()

    assert not Passage.objects.filter(embedding__isnull=False).exists()
    assert _titles("refund") == ["Refunds"]
    assert _titles("money back") == []
