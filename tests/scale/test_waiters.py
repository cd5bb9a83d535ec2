"""API clients that wait for their answer (`?wait=N`, Server-Sent Events) hold no
database connection and no thread while they wait, so one process serves many more of
them than its pool has connections, and keeps serving everyone else.

Every waiter here talks to one daphne process, four times as many as its pool
(POOL_MAX_SIZE) has connections; some hang up mid-wait. Each message must be stored
once and answered, each client that stayed must get its answer, and the process must
still answer its readiness probe and an ordinary request straight afterwards.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from conversations.access import visitor_token_issue
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from tests import fake_provider as fp
from tests.conftest import wait_for
from tests.scale.harness import POOL_MAX_SIZE

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Long and slow enough (about ten seconds) to look at the process while clients wait;
# the provider keeps streaming, as a stalled stream would time out.
ANSWER = " ".join(["Your order left our warehouse this morning and arrives on Thursday."] * 4)
WAITERS = 4 * POOL_MAX_SIZE


def _sse_events(chunks: list[str]) -> list[dict[str, Any]]:
    text = "".join(chunks)
    events = []
    for block in text.split("\n\n"):
        data = [line[5:].lstrip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


async def _wait_client(client: httpx.AsyncClient, conversation_id: str, token: str, *, hang_up: bool) -> dict[str, Any]:
    path = f"/api/v1/conversations/{conversation_id}/messages?wait=25"
    headers = {"Authorization": f"Visitor {token}"}
    body = {"text": "Where is my order?", "client_id": "m-1"}
    if hang_up:
        try:  # gives up before the answer can be ready, and closes the connection
            await client.post(path, json=body, headers=headers, timeout=httpx.Timeout(30, read=0.3))
        except httpx.ReadTimeout:
            return {"mode": "wait", "hung_up": True}
        return {"mode": "wait", "hung_up": False, "status": "answered too soon"}
    response = await client.post(path, json=body, headers=headers, timeout=40)
    return {"mode": "wait", "hung_up": False, "status": response.status_code,
            "body": response.json() if response.headers.get("content-type", "").startswith("application/json") else response.text}


async def _sse_client(client: httpx.AsyncClient, conversation_id: str, token: str, *, hang_up: bool) -> dict[str, Any]:
    path = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {"Authorization": f"Visitor {token}", "Accept": "text/event-stream"}
    chunks: list[str] = []
    async with client.stream("POST", path, json={"text": "Where is my order?", "client_id": "m-1"},
                             headers=headers, timeout=40) as response:
        if response.status_code != 200:
            return {"mode": "sse", "hung_up": False, "status": response.status_code, "body": await response.aread()}
        async for chunk in response.aiter_text():
            chunks.append(chunk)
            if hang_up and _sse_events(chunks):
                return {"mode": "sse", "hung_up": True}  # leaving the block closes the connection
    return {"mode": "sse", "hung_up": False, "status": 200, "events": _sse_events(chunks)}


def _answered(result: dict[str, Any]) -> bool:
    if result["mode"] == "wait":
        body = result.get("body")
        return (result["status"] == 201 and isinstance(body, dict) and body["turn"]["status"] == "completed"
                and [m["text"] for m in body["answer"]] == [ANSWER])
    events = result.get("events") or []
    return (bool(events) and events[-1]["type"] == "turn.completed"
            and any(e["type"] == "message" and e["message"]["text"] == ANSWER for e in events))


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


async def _off_loop(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """ORM work from the test's loop, on a thread that closes its connection after."""
    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


def _visitor(conversation: Any) -> dict[str, str]:
    return {"Authorization": f"Visitor {visitor_token_issue(conversation)}"}


def test_many_more_waiting_clients_than_pool_connections_all_get_answers(scale):
    web = scale.cluster.processes[0]
    # A first post and answer, so the process has started the threads it keeps
    scale.provider.responder = lambda body: fp.text("Hello.")
    warm = conversation_create(channel="api")
    assert httpx.post(f"{web.url}/api/v1/conversations/{warm.pk}/messages?wait=10", json={"text": "Hi"},
                      headers=_visitor(warm), timeout=20).status_code == 201
    threads_before = _threads(web.pid)
    # Given answers that take a while
    scale.provider.responder = lambda body: fp.text(ANSWER, delta_delay=0.2)
    conversations = [conversation_create(channel="api") for _ in range(WAITERS)]
    # Every fourth client hangs up mid-wait; half wait with ?wait=, half stream.
    plan = [("wait" if n % 2 else "sse", n % 4 == 0) for n in range(WAITERS)]
    hung_up_count = sum(1 for _, hang_up in plan if hang_up)
    during: dict[str, Any] = {}

    def all_answering() -> bool:
        return Turn.objects.filter(conversation__in=conversations, status="running").count() == WAITERS

    async def scenario() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=WAITERS + 8, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=web.url, limits=limits) as client:
            tasks = [asyncio.ensure_future((_wait_client if mode == "wait" else _sse_client)(
                client, str(c.pk), visitor_token_issue(c), hang_up=hang_up))
                for c, (mode, hang_up) in zip(conversations, plan, strict=True)]
            # When all of them have posted to one process and wait for their answers
            await _off_loop(wait_for, all_answering, 60)
            await _off_loop(wait_for, lambda: sum(t.done() for t in tasks) == hung_up_count, 30)
            during["threads"] = _threads(web.pid)
            # the process serves everyone else meanwhile
            fresh = await _off_loop(conversation_create, channel="api")
            during["readyz"] = (await client.get("/readyz", timeout=10)).status_code
            during["post"] = (await client.post(f"/api/v1/conversations/{fresh.pk}/messages",
                                                json={"text": "Hi"}, headers=_visitor(fresh),
                                                timeout=10)).status_code
            during["poll"] = (await client.get(f"/api/v1/conversations/{fresh.pk}/messages",
                                               headers=_visitor(fresh), timeout=10)).status_code
            during["still_waiting"] = sum(not t.done() for t in tasks)
            return await asyncio.gather(*tasks)

    results = asyncio.run(scenario())

    # Then, while they waited, the process answered a probe, a post and a poll at once,
    # and the waiters held no thread each (nor a connection: the pool is a quarter of them)
    assert during["still_waiting"] == WAITERS - hung_up_count, during
    assert (during["readyz"], during["post"], during["poll"]) == (200, 201, 200), during
    assert during["threads"] - threads_before <= WAITERS // 3, (threads_before, during["threads"])
    # and every client that stayed got its answer
    stayed = [r for r in results if not r["hung_up"]]
    assert len(stayed) == WAITERS - hung_up_count
    failures = [r for r in stayed if not _answered(r)]
    assert not failures, failures[:3]
    # and every message was stored once and answered, hung-up clients' too
    wait_for(lambda: Turn.objects.filter(conversation__in=conversations, status="completed").count() == WAITERS,
             timeout=60)
    for conversation in conversations:
        stored = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("kind", "text"))
        assert stored == [("user", "Where is my order?"), ("assistant", ANSWER)], stored
    # and afterwards the process is ready and serves as before
    assert httpx.get(f"{web.url}/readyz", timeout=10).status_code == 200
    polled = httpx.get(f"{web.url}/api/v1/conversations/{warm.pk}/messages", headers=_visitor(warm), timeout=10)
    assert polled.status_code == 200 and [m["text"] for m in polled.json()["results"]] == ["Hi", "Hello."]
