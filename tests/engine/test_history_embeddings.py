"""Semantic history retrieval as it runs by default (`HISTORY_EMBEDDINGS=offline`, the
background embedding thread on): committed items are embedded by the thread, a later
paraphrase question is answered with the old fact in the request the provider
receives, and an answer never waits for the thread, even when it is stuck."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from conversations.knowledge import history_semantic
from conversations.knowledge.models import MessageEmbedding
from conversations.models import Message
from conversations.retrieval import MODEL_KINDS
from conversations.services.items import items_append
from tests.engine.support import answered, ask, wait_until
from tests.knowledge.helpers import exchange, filler

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
FACT = "My spaniel Biscuit chews through every cable, so the charger must be sturdy."
QUESTION = "What's my pet called?"


@pytest.fixture
def embedding_thread(monkeypatch):
    """The defaults: offline embeddings, written by the background thread."""
    monkeypatch.setitem(settings.SUPPORT_PLATFORM, "HISTORY_EMBEDDINGS", "offline")
    monkeypatch.setitem(settings.SUPPORT_PLATFORM, "HISTORY_EMBED_BACKGROUND", True)
    history_semantic.clear_caches()
    yield
    assert history_semantic.worker.wait_idle(60), "the embedding thread did not finish"
    history_semantic.clear_caches()


def _embedded(conversation) -> bool:
    items = Message.objects.filter(conversation=conversation, kind__in=MODEL_KINDS).count()
    return MessageEmbedding.objects.filter(conversation_id=conversation.pk).count() == items


def _long_chat(conversation, agent) -> None:
    agent.history_token_budget = 400
    agent.save(update_fields=["history_token_budget"])
    with transaction.atomic():
        items_append(conversation=conversation, items=exchange(FACT, "Noted, a sturdy one."))
        items_append(conversation=conversation, items=filler(120))


def test_offline_embeddings_are_the_default_with_one_blas_thread(tmp_path):
    """On by default; and NumPy's BLAS runs one thread (several spin on a 2-core server,
    ~12x the CPU of one embedding, taken from the event loop's core)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SUPPORT_HISTORY_") and k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(DJANGO_SETTINGS_MODULE="support.settings", SUPPORT_SKIP_DOTENV="1",
               SUPPORT_VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    script = ("import django, json, os; django.setup(); from conversations.conf import platform_setting as s; "
              "import numpy; from conversations.knowledge import minilm; "
              "print(json.dumps([s('HISTORY_EMBEDDINGS'), s('HISTORY_EMBED_BACKGROUND'), "
              "os.environ['OPENBLAS_NUM_THREADS']]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["offline", True, "1"]


def test_the_thread_embeds_what_was_committed_and_a_paraphrase_reaches_the_model(
    conversation, agent, provider, embedding_thread
):
    _long_chat(conversation, agent)
    wait_until(lambda: _embedded(conversation), timeout=60)

    turn = answered(ask(conversation, QUESTION))

    assert turn.status == "completed"
    (request,) = provider.requests_for(conversation.pk)
    sent = [item.get("content") for item in request["input"]]
    assert FACT in sent
    assert sent[-1] == QUESTION
    reasons = {entry["message_id"]: entry["reason"] for entry in turn.history}
    fact_id = Message.objects.get(conversation=conversation, text=FACT).pk
    assert reasons[fact_id] == "retrieved"
    wait_until(lambda: _embedded(conversation), timeout=60)  # the question and answer too


def test_an_answer_never_waits_for_the_embedding_thread(conversation, agent, provider, embedding_thread,
                                                        monkeypatch, gates):
    """The thread is stuck inside its work; the turn completes all the same, and the
    items are embedded once it goes on."""
    gate, started = gates(), threading.Event()
    embed = history_semantic.embed_pending

    def stuck(*args, **kwargs):
        started.set()
        gate.wait(30)
        return embed(*args, **kwargs)

    monkeypatch.setattr(history_semantic, "embed_pending", stuck)
    _long_chat(conversation, agent)
    assert started.wait(15)

    turn = answered(ask(conversation, "Is the charger cable sturdy enough?"))

    assert turn.status == "completed" and not gate.is_set()
    assert not MessageEmbedding.objects.filter(conversation_id=conversation.pk).exists()
    assert provider.requests_for(conversation.pk)[-1]["input"][-1]["content"] == "Is the charger cable sturdy enough?"
    gate.set()
    wait_until(lambda: _embedded(conversation), timeout=60)
