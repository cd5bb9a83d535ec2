"""PII redaction seen from the widget: a visitor's socket streams and shows the real
values while the provider only ever received placeholders (the real ASGI stack, the
real SDK, the fake provider)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.agent.engine import engine
from conversations.models import Agent, Conversation, Turn
from conversations.services.conversations import conversation_create
from tests import fake_provider as fp
from tests.realtime.test_consumer import open_client, path_for
from tests.realtime.wsclient import of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async

EMAIL = "grace@example.org"
PHONE = "+1 415 555 2671"


@pytest.fixture(autouse=True)
async def _turns_finish():
    yield
    await engine.wait_idle()


@pytest.fixture
def conversation(default_agent: Agent, provider: Any) -> Conversation:
    default_agent.pii_redaction = True
    default_agent.save()
    return conversation_create(channel="widget")


async def test_the_visitor_sees_real_values_streamed_and_stored(conversation, provider):
    # Given a model that answers with placeholders split across its deltas
    words = ["We will email <EMAIL", "_1> and call <PHO", "NE_1", "> today."]
    provider.queue(fp.Step(kind="text", words=words, delta_delay=0.05))
    client = await open_client(path_for(conversation))
    await client.until(of_type("caught_up"))

    # When the visitor writes their email and phone number
    await client.send({"type": "message", "text": f"I'm {EMAIL}, phone {PHONE}", "client_id": "c1"})
    answer = await client.until(lambda e: e.get("type") == "message" and e["message"]["kind"] == "assistant")
    await client.until(of_type("turn.completed"))

    # Then every delta and the answer show the real values, never a placeholder
    expected = f"We will email {EMAIL} and call {PHONE} today."
    deltas = [e["delta"] for e in client.events if e["type"] == "text.delta"]
    assert "".join(deltas) == expected and answer["message"]["text"] == expected
    assert not any("<" in delta for delta in deltas), deltas
    # And the provider saw only placeholders, as the turn's audit recorded
    sent = json.dumps(provider.requests_for(conversation.pk))
    assert EMAIL not in sent and PHONE not in sent and "<EMAIL_1>, phone <PHONE_1>" in sent
    turn = await db(Turn.objects.get)(conversation=conversation)
    assert turn.requests == provider.requests_for(conversation.pk)
    await client.close()
