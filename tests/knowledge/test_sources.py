"""A provider model's answer carries the passages it drew on (`metadata.sources`),
through the real SDK against the scripted fake provider."""

from __future__ import annotations

import json

import pytest

from conversations.knowledge.services import document_create
from conversations.models import Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests import fake_provider as fp
from tests.conftest import wait_turn_finished

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kb_agent(default_agent):
    for n in range(6):
        document_create(
            title=f"Filler {n}",
            body=f"Coffee beans note {n}: roasted weekly in small batches, packed in bags with a "
            "one-way valve, shipped the next morning, no warranty questions here, stored cool "
            "and dry, best within a month of the roast date printed on every bag we send.",
        )
    document_create(title="Warranty", body="Grinders carry a two-year warranty on motor and burrs.")
    document_create(title="Warranty claims", body="To claim the warranty, send a photo of the fault.")
    return default_agent


def _run(provider, question: str, *searches: str, answer: str = "Two years.") -> Message:
    provider.queue(*[fp.calls(("search_knowledge_base", {"query": q})) for q in searches], fp.text(answer))
    conversation = conversation_create(channel="widget")
    posted = message_post(conversation=conversation, text=question)
    turn = wait_turn_finished(posted.turn.id)
    assert turn.status == "completed", turn.error_message
    return Message.objects.filter(conversation=conversation, kind="assistant").get()


def test_sources_are_the_strong_passages_of_each_search_once(provider, kb_agent):
    answer = _run(provider, "Warranty on grinders?", "grinders warranty", "warranty claim", "grinders warranty")

    outputs = Message.objects.filter(conversation=answer.conversation, kind="function_output").order_by("seq")
    first = json.loads(outputs[0].text)["results"]
    sources = answer.metadata["sources"]
    assert sources[0]["passage_id"] == first[0]["passage_id"] and sources[0]["title"] == "Warranty"
    assert {s["title"] for s in sources} == {"Warranty", "Warranty claims"}
    assert len({s["passage_id"] for s in sources}) == len(sources) <= 3
    assert all(s["snippet"] and s["score"] > 0 for s in sources)
    assert any(r["title"].startswith("Filler") for r in first)  # weak matches were shown...
    assert not any(s["title"].startswith("Filler") for s in sources)  # ...but are not cited


def test_an_answer_without_a_search_has_no_sources(provider, kb_agent):
    answer = _run(provider, "Hello?", answer="Hi there.")

    assert "sources" not in answer.metadata
