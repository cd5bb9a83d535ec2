"""Every `/api/` endpoint of a daphne process while its PostgreSQL connection is cut:
503 with `Retry-After` in the API's error shape (so a proxy's `proxy_next_upstream
http_503` and clients' retries apply), for the waiting and streaming answer modes
too; once the database is back the same process answers them again by itself."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from conversations.access import visitor_token_issue
from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, Scope
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests import fake_provider as fp
from tests.resilience.test_every_door_unavailable import api_requests

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _conversation_with_a_failed_turn(agent: Any) -> tuple[Any, Any]:
    conversation = conversation_create(channel="api")
    conversation.ai_paused = True  # store without running a turn
    conversation.save(update_fields=["ai_paused"])
    posted = message_post(conversation=conversation, text="Where is my order?")
    turn = Turn.objects.create(conversation=conversation, user_message=posted.message, agent=agent, status="failed")
    conversation.ai_paused = False
    conversation.save(update_fields=["ai_paused"])
    return conversation, turn


async def _ask_all(base_url: str, requests: list[Any], headers: dict[str, str]) -> list[tuple[str, httpx.Response]]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        async def one(method: str, path: str, body: Any, extra: dict[str, str]) -> tuple[str, httpx.Response]:
            response = await client.request(method, path, json=body, headers={**headers, **extra})
            return f"{method} {path} {extra}", response
        return await asyncio.gather(*[one(*request) for request in requests])


def test_every_api_endpoint_answers_503_with_retry_after_while_postgres_is_cut(scale, default_agent):
    web = scale.cluster.processes[0]
    conversation, turn = _conversation_with_a_failed_turn(default_agent)
    _key, raw = api_key_create(client=ApiClient.objects.create(name="outage"), name="k",
                               scopes=[Scope.READ, Scope.WRITE, Scope.ALL_CONVERSATIONS])
    callers = {"key": {"Authorization": f"Bearer {raw}"},
               "visitor": {"Authorization": f"Visitor {visitor_token_issue(conversation)}"}}
    # When the process's database becomes unreachable
    scale.proxy.cut()
    try:
        answered = {name: asyncio.run(_ask_all(web.url, api_requests(conversation, turn), headers))
                    for name, headers in callers.items()}
    finally:
        scale.proxy.restore()
    # Then every endpoint, for every caller, answered 503 + Retry-After in the error shape
    for name, responses in answered.items():
        for what, response in responses:
            assert response.status_code == 503, (name, what, response.status_code, response.text[:300])
            assert int(response.headers["retry-after"]) > 0, (name, what)
            assert response.json()["error"]["code"] == "service_unavailable", (name, what, response.text)
    assert Message.objects.filter(conversation=conversation).count() == 1  # nothing half written
    # and once it is back, the same process answers a waiting post by itself
    scale.provider.responder = lambda body: fp.text("We are back.")
    recovered = None
    for _ in range(100):
        response = httpx.post(f"{web.url}/api/v1/conversations/{conversation.pk}/messages?wait=10",
                              json={"text": "Still there?"}, headers=callers["visitor"], timeout=20)
        if response.status_code != 503:
            recovered = response
            break
    assert recovered is not None and recovered.status_code == 201, recovered and recovered.text
    assert [m["text"] for m in recovered.json()["answer"]] == ["We are back."]
