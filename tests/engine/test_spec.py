"""The wire format against the official OpenAPI spec (the vendored subset): what the
offline model streams, and what the platform sends to it. The fake provider's events
and every Turn's requests are checked after each engine test by the conftest; these
tests show the checks can fail and cover the offline model's every branch."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from conversations.agent.offline_model import OfflineModelTransport
from conversations.models import Turn
from conversations.services.conversations import conversation_create
from tests.engine.support import answered, ask
from tests.spec.openai_schema import assert_valid_event, assert_valid_request, errors

TOOLS = [
    {"type": "function", "name": name, "description": "d", "strict": True,
     "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}}
    for name in ("lookup_order", "handoff_to_human", "search_knowledge_base")
]


def test_the_validators_reject_what_the_spec_does_not_allow():
    good = {"model": "gpt-4.1-mini", "input": [{"type": "message", "role": "user", "content": "hi"}], "stream": True}
    assert errors("CreateResponse", good) == []
    assert errors("CreateResponse", {**good, "store": "no"})
    assert errors("CreateResponse", {**good, "input": [{"type": "function_call_output", "call_id": "c", "output": 42}]})
    assert errors("CreateResponse", {**good, "input": [{"type": "message", "role": "robot", "content": "hi"}]})
    assert errors("CreateResponse", {**good, "tool_choice": "sometimes"})
    assert errors("ResponseStreamEvent", {"type": "response.output_text.delta", "delta": "x"})
    assert errors("ResponseStreamEvent", {"type": "response.completed", "sequence_number": 1, "response": {"usage": None}})


def _offline_events(request: dict[str, Any]) -> list[dict[str, Any]]:
    async def fetch() -> bytes:
        async with httpx2.AsyncClient(transport=OfflineModelTransport(), base_url="http://offline") as client:
            response = await client.post("/v1/responses", json=request)
            assert response.status_code == 200
            return await response.aread()

    import asyncio

    body = asyncio.run(fetch()).decode()
    events = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        event = json.loads(lines["data"])
        assert lines["event"] == event["type"]
        events.append(event)
    return events


def _user(text: str) -> list[dict[str, Any]]:
    return [{"type": "message", "role": "user", "content": text}]


def _after_call(name: str, output: str) -> list[dict[str, Any]]:
    return _user("question") + [
        {"type": "function_call", "call_id": "call_1", "name": name, "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": output},
    ]


ORDER = json.dumps({"order_number": "1001", "status": "shipped", "items": [{"name": "Grinder"}],
                    "carrier": "UPS", "tracking_number": "1Z", "estimated_delivery": "2026-01-01"})


@pytest.mark.parametrize(
    ("inputs", "tools", "expect"),
    [
        (_user("Hello"), TOOLS[:2], "text"),
        (_user("How long does shipping take?"), TOOLS[:2], "text"),
        (_user("Something odd"), [], "text"),
        (_user("Where are orders 1001 and 1003? ada@example.com"), TOOLS[:2], "calls"),
        (_user("I want to talk to a person"), TOOLS[:2], "calls"),
        (_user("How do refunds work?"), TOOLS, "calls"),
        (_after_call("lookup_order", ORDER), TOOLS[:2], "text"),
        (_after_call("lookup_order", "Error: lookup_order did not finish within 15 seconds."), TOOLS[:2], "text"),
        (_after_call("handoff_to_human", "queued"), TOOLS[:2], "text"),
        (_after_call("search_knowledge_base", json.dumps({"results": [{"title": "Refunds", "text": "30 days."}]})), TOOLS, "text"),
    ],
    ids=["greeting", "faq", "fallback", "parallel-orders", "handoff", "knowledge-base", "order-answer",
         "tool-error", "handoff-answer", "kb-answer"],
)
def test_every_event_the_offline_model_streams_matches_the_spec(inputs, tools, expect):
    request = {"model": "offline-support-1", "input": inputs, "stream": True, "store": False, "tools": tools,
               "metadata": {"conversation": "c", "turn": "t"}}
    assert_valid_request(request)

    events = _offline_events(request)

    for event in events:
        assert_valid_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    kinds = {item["type"] for item in events[-1]["response"]["output"]}
    assert kinds == ({"message"} if expect == "text" else {"function_call"})


@pytest.mark.django_db(transaction=True)
def test_offline_turns_send_requests_that_match_the_spec(default_agent, offline):
    conversation = conversation_create(agent=default_agent, channel="widget")

    for question in ("Hello", "Where is order 1001? ada@example.com", "I want a human"):
        turn = answered(ask(conversation, question))
        assert turn.status == "completed", turn.error_message

    requests = [body for turn in Turn.objects.all() for body in turn.requests]
    assert len(requests) == 5  # greeting, order (2 rounds), handoff (2 rounds)
    for body in requests:
        assert_valid_request(body)
