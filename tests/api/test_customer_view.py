"""A visitor sees the same conversation over the REST API as over the widget websocket.

Issue 14, finding 5: over REST a visitor's token read the raw output of
`lookup_order` (and the provider's error text of a failed turn), while the websocket
showed only the tool's status, as docs/widget.md promises. Both doors now serve
visitors through `conversations.customer_view`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from conversations.access import visitor_token_issue
from conversations.console.benchdata import conversation_long
from conversations.models import Conversation, Turn
from tests.api.schema_check import assert_matches_schema
from tests.realtime.wsclient import WsClient, of_type

db = database_sync_to_async


def _visitor_get(conversation: Any, path: str) -> Any:
    client = APIClient()
    token = visitor_token_issue(conversation)
    url = f"/api/v1/conversations/{conversation.pk}{path}"
    response = client.get(url, HTTP_AUTHORIZATION=f"Visitor {token}")
    assert response.status_code == 200, response.content
    assert_matches_schema(response, "GET", url)
    return response.json()


def _visitor_get_list(conversation: Any) -> Any:
    token = visitor_token_issue(conversation)
    response = APIClient().get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Visitor {token}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
async def test_a_visitor_sees_the_same_items_over_rest_and_the_websocket(default_agent):
    # Given a conversation with tool calls, their outputs, staff replies and notes
    conversation = await db(conversation_long)(agent=default_agent, items=12, fail_last=True)
    # When its visitor reads it over REST and over the websocket
    rest = (await db(_visitor_get)(conversation, "/messages"))["results"]
    socket = WsClient(f"/ws/conversations/{conversation.pk}/?token={visitor_token_issue(conversation)}")
    assert await socket.connect()
    await socket.until(of_type("caught_up"))
    await socket.close()
    over_socket = [e["message"] for e in socket.events if e["type"] == "message"]
    # Then both show the same items, and no raw tool output
    assert rest == over_socket
    outputs = [m for m in rest if m["kind"] == "function_output"]
    assert outputs and all(m["text"] == "" and m["ok"] is True for m in outputs)
    assert "carrier" not in json.dumps(rest) and "note" not in {m["kind"] for m in rest}
    calls = [m for m in rest if m["kind"] == "function_call"]
    assert calls and all(m["activity"] for m in calls)


@pytest.mark.django_db
def test_a_visitor_gets_a_failed_turns_code_but_not_the_providers_error_text_or_handoff_reason(default_agent):
    conversation = conversation_long(agent=default_agent, items=12, fail_last=True)
    reason = "Over the conversation token budget: 12,000 of 10,000 tokens."
    Conversation.objects.filter(pk=conversation.pk).update(metadata={"handoff_reason": reason, "page": "/help"})
    failed = Turn.objects.get(conversation=conversation, status="failed")
    detail = _visitor_get(conversation, f"/turns/{failed.pk}")
    assert detail["error_code"] == "provider_error" and detail["error"] is None
    listed = [t for t in _visitor_get(conversation, "/turns")["results"] if t["id"] == str(failed.pk)]
    assert listed[0]["error"] is None
    shown = _visitor_get(conversation, "")
    assert "upstream" not in json.dumps(shown) and shown["metadata"] == {"page": "/help"}
    assert all(c["metadata"] == {"page": "/help"} for c in _visitor_get_list(conversation)["results"])


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_visitors_event_stream_shows_tool_steps_not_their_output(provider_server, live_key, _fake_provider_server):
    from tests import fake_provider as fp
    from tests.api.sse import events as sse_events

    # Given a conversation whose next turn looks an order up, then answers
    _fake_provider_server.reset()
    _fake_provider_server.queue(
        fp.calls(("lookup_order", {"order_number": "1001", "email": "ada@example.com"})),
        fp.text("Your order is on its way."),
    )
    with provider_server.client(headers={"Authorization": f"Bearer {live_key}"}) as http:
        created = http.post("/api/v1/conversations", json={"customer_id": "u-view"}).json()
        # When its visitor posts and follows the answer as Server-Sent Events
        path = f"/api/v1/conversations/{created['id']}/messages"
        visitor = {"Authorization": f"Visitor {created['visitor_token']}", "Accept": "text/event-stream"}
        with http.stream("POST", path, json={"text": "Where is order 1001?"}, headers=visitor) as response:
            assert response.status_code == 200
            received = list(sse_events(response.iter_lines()))
    # Then the tool's step is shown in words and whether it worked, never its output
    messages = [e["message"] for e in received if e["type"] == "message"]
    outputs = [m for m in messages if m["kind"] == "function_output"]
    assert outputs and all(m["text"] == "" and "ok" in m for m in outputs)
    assert any(m["kind"] == "function_call" and m["activity"] for m in messages)
    assert received[-1]["type"] == "turn.completed"


@pytest.mark.django_db(transaction=True)
def test_a_visitors_event_stream_links_only_the_published_sources_of_an_answer(provider_server, live_key, _fake_provider_server):
    from conversations.knowledge.services import document_create
    from tests import fake_provider as fp
    from tests.api.sse import events as sse_events

    # Given a published article and an internal one on the same subject
    public = document_create(title="Gift wrapping", body="We gift wrap any order for $3.", is_public=True)
    document_create(title="Gift wrapping supplier contract", body="We gift wrap at cost 0.40 from Acme.")
    _fake_provider_server.reset()
    _fake_provider_server.queue(fp.calls(("search_knowledge_base", {"query": "gift wrap"})), fp.text("We wrap for $3."))
    with provider_server.client(headers={"Authorization": f"Bearer {live_key}"}) as http:
        created = http.post("/api/v1/conversations", json={"customer_id": "u-sources"}).json()
        path = f"/api/v1/conversations/{created['id']}/messages"
        visitor = {"Authorization": f"Visitor {created['visitor_token']}", "Accept": "text/event-stream"}
        # When the visitor asks and follows the answer as Server-Sent Events
        with http.stream("POST", path, json={"text": "Do you gift wrap?"}, headers=visitor) as response:
            assert response.status_code == 200
            received = list(sse_events(response.iter_lines()))
        listed = http.get(path, headers={"Authorization": f"Visitor {created['visitor_token']}"}).json()["results"]
        staff_view = http.get(path).json()["results"]
    # Then the answer links the published article only, live and read back alike
    answer = [e["message"] for e in received if e["type"] == "message" and e["message"]["kind"] == "assistant"][-1]
    links = [{"title": "Gift wrapping", "url": f"/help/{public.pk}-gift-wrapping/"}]
    assert answer["metadata"] == {"sources": links}
    assert listed[-1]["metadata"] == {"sources": links}
    assert "supplier" not in json.dumps(received) + json.dumps(listed)
    # and the API key (staff-side) still sees every source the answer drew on
    titles = {s["title"] for s in staff_view[-1]["metadata"]["sources"]}
    assert "Gift wrapping" in titles
