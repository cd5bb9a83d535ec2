"""The agent's try-it panel runs on the same loop and request builder as customers'
turns: what a model needs (here gpt-5.4: encrypted reasoning, `phase`, the cache key
and safety identifier) reaches the provider from the panel too."""

from __future__ import annotations

import json

import pytest

from conversations.models import Message, Turn
from tests.conftest import wait_for
from tests.fake_provider import calls, text

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_try_it_panel_sends_what_real_turns_send(default_agent, provider, agent_client):
    default_agent.model = "gpt-5.4"
    default_agent.temperature = 0.4  # a row saved before the capability check: never sent with effort high
    default_agent.reasoning_effort = "high"
    default_agent.save()
    provider.queue(
        calls(("lookup_order", {"order_number": "1001", "email": "ada@example.com"}), reasoning="gAAAA-try",
              commentary="Checking that order."),
        text("Order 1001 has shipped.", phase="final_answer"),
    )

    started = agent_client.post(f"/admin/conversations/agent/{default_agent.pk}/try/").json()
    url = f"/admin/conversations/agent/{default_agent.pk}/try/{started['conversation']}/messages/"
    posted = agent_client.post(url, json.dumps({"text": "Where is 1001? ada@example.com"}),
                               content_type="application/json").json()
    turn = wait_for(lambda: (t := Turn.objects.get(pk=posted["turn"]["id"])).is_finished and t)

    assert turn.status == "completed", turn.error_message
    first, second = provider.requests
    assert first["reasoning"] == {"effort": "high"} and "temperature" not in first
    assert first["include"] == ["reasoning.encrypted_content"]
    assert first["prompt_cache_key"].endswith(started["conversation"]) and first["safety_identifier"]
    assert {"type": "message", "role": "assistant", "content": "Checking that order.", "phase": "commentary"} \
        in second["input"]
    answers = list(Message.objects.filter(conversation_id=started["conversation"], kind="assistant"))
    assert [m.text for m in answers] == ["Order 1001 has shipped."]
