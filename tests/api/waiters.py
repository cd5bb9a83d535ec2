"""Clients that wait for their answer through the REST API (`?wait=`, SSE), some of
which hang up mid-wait: shared by the embedded and the scale-mode waiting tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from django.db import connection

from conversations.access import visitor_token_issue
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from tests.conftest import wait_for

ANSWER = " ".join(["Your order left our warehouse this morning and arrives on Thursday."] * 4)


def sse_events(chunks: list[str]) -> list[dict[str, Any]]:
    text = "".join(chunks)
    events = []
    for block in text.split("\n\n"):
        data = [line[5:].lstrip() for line in block.splitlines() if line.startswith("data:")]
        if data:
            events.append(json.loads("\n".join(data)))
    return events


async def wait_client(client: httpx.AsyncClient, conversation_id: str, token: str, *, hang_up: bool) -> dict[str, Any]:
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


async def sse_client(client: httpx.AsyncClient, conversation_id: str, token: str, *, hang_up: bool) -> dict[str, Any]:
    path = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {"Authorization": f"Visitor {token}", "Accept": "text/event-stream"}
    chunks: list[str] = []
    async with client.stream("POST", path, json={"text": "Where is my order?", "client_id": "m-1"},
                             headers=headers, timeout=40) as response:
        if response.status_code != 200:
            return {"mode": "sse", "hung_up": False, "status": response.status_code, "body": await response.aread()}
        async for chunk in response.aiter_text():
            chunks.append(chunk)
            if hang_up and sse_events(chunks):
                return {"mode": "sse", "hung_up": True}  # leaving the block closes the connection
    return {"mode": "sse", "hung_up": False, "status": 200, "events": sse_events(chunks)}


def answered(result: dict[str, Any]) -> bool:
    if result["mode"] == "wait":
        body = result.get("body")
        return (result["status"] == 201 and isinstance(body, dict) and body["turn"]["status"] == "completed"
                and [m["text"] for m in body["answer"]] == [ANSWER])
    events = result.get("events") or []
    return (bool(events) and events[-1]["type"] == "turn.completed"
            and any(e["type"] == "message" and e["message"]["text"] == ANSWER for e in events))


def threads_of(pid: int) -> int:
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


def visitor(conversation: Any) -> dict[str, str]:
    return {"Authorization": f"Visitor {visitor_token_issue(conversation)}"}


def warm_up(url: str) -> Any:
    """One post answered, so the process has started the threads it keeps."""
    warm = conversation_create(channel="api")
    response = httpx.post(f"{url}/api/v1/conversations/{warm.pk}/messages?wait=10", json={"text": "Hi"},
                          headers=visitor(warm), timeout=20)
    assert response.status_code == 201, response.text
    return warm


def many_waiters(
    url: str, pid: int, count: int, *, probe: Callable[[list[Any], list[Any]], Any] | None = None,
) -> tuple[list[Any], list[dict[str, Any]], dict[str, Any]]:
    """`count` clients post at once to the process at `url` and wait for their answers,
    half with `?wait=`, half streaming, every fourth hanging up mid-wait. While they
    wait (every turn running), the process's thread count is taken and it is asked for
    `/readyz`, a post and a poll. Returns (conversations, results, what was seen
    meanwhile, with `probe(hung_up_conversations, waiting_conversations)`'s result).
    The provider must answer slowly (ANSWER, a delta every 0.2 s)."""
    conversations = [conversation_create(channel="api") for _ in range(count)]
    plan = [("wait" if n % 2 else "sse", n % 4 == 0) for n in range(count)]
    hung_up = sum(1 for _, hang_up in plan if hang_up)
    during: dict[str, Any] = {"hung_up": hung_up}

    def all_answering() -> bool:
        return Turn.objects.filter(conversation__in=conversations, status="running").count() == count

    async def scenario() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=count + 8, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=limits) as client:
            tasks = [asyncio.ensure_future((wait_client if mode == "wait" else sse_client)(
                client, str(c.pk), visitor_token_issue(c), hang_up=hang_up))
                for c, (mode, hang_up) in zip(conversations, plan, strict=True)]
            await _off_loop(wait_for, all_answering, 60)
            await _off_loop(wait_for, lambda: sum(t.done() for t in tasks) == hung_up, 30)
            during["threads"] = threads_of(pid)
            if probe is not None:
                gone = [c for c, (_, hang_up) in zip(conversations, plan, strict=True) if hang_up]
                during["probe"] = await _off_loop(probe, gone, [c for c in conversations if c not in gone])
            fresh = await _off_loop(conversation_create, channel="api")
            during["readyz"] = (await client.get("/readyz", timeout=10)).status_code
            during["post"] = (await client.post(f"/api/v1/conversations/{fresh.pk}/messages",
                                                json={"text": "Hi"}, headers=visitor(fresh),
                                                timeout=10)).status_code
            during["poll"] = (await client.get(f"/api/v1/conversations/{fresh.pk}/messages",
                                               headers=visitor(fresh), timeout=10)).status_code
            during["still_waiting"] = sum(not t.done() for t in tasks)
            return await asyncio.gather(*tasks)

    return conversations, asyncio.run(scenario()), during


def assert_all_answered(conversations: list[Any], results: list[dict[str, Any]], during: dict[str, Any],
                        *, threads_before: int) -> None:
    count = len(conversations)
    # While they waited, the process answered a probe, a post and a poll at once, and
    # the waiters held no thread each (nor a connection, or nothing else would get one)
    assert during["still_waiting"] == count - during["hung_up"], during
    assert (during["readyz"], during["post"], during["poll"]) == (200, 201, 200), during
    assert during["threads"] - threads_before <= count // 3, (threads_before, during["threads"])
    # and every client that stayed got its answer
    stayed = [r for r in results if not r["hung_up"]]
    assert len(stayed) == count - during["hung_up"]
    failures = [r for r in stayed if not answered(r)]
    assert not failures, failures[:3]
    # and every message was stored once and answered, hung-up clients' too
    wait_for(lambda: Turn.objects.filter(conversation__in=conversations, status="completed").count() == count,
             timeout=60)
    for conversation in conversations:
        stored = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("kind", "text"))
        assert stored == [("user", "Where is my order?"), ("assistant", ANSWER)], stored
