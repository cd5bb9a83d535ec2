"""The doors across processes: a widget socket on one daphne process streams the answer
to a message an API client posted through the other; messages posted concurrently
through both processes are answered one at a time, in order."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from conversations.access import visitor_token_issue
from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from tests import fake_provider as fp
from tests.conftest import wait_for

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ANSWER = "Your grinder left our warehouse this morning and arrives on Tuesday."


async def _watch_until_answer(url: str, ready: asyncio.Event) -> list[dict[str, Any]]:
    """Every event a widget socket receives until the stored answer arrives."""
    events: list[dict[str, Any]] = []
    origin = url.replace("ws://", "http://").split("/ws/")[0]
    async with connect(url, origin=origin) as socket:
        async with asyncio.timeout(30):
            async for frame in socket:
                event = json.loads(frame)
                events.append(event)
                if event["type"] == "caught_up":
                    ready.set()
                if event["type"] == "message" and event["message"]["kind"] == "assistant":
                    return events
    return events


def test_a_widget_on_one_process_streams_the_answer_to_an_api_post_on_the_other(scale):
    # Given a visitor whose widget is connected to process A
    web_a, web_b = scale.cluster.processes[:2]
    scale.provider.queue(fp.text(ANSWER, delta_delay=0.05))
    conversation = conversation_create(channel="widget")
    token = visitor_token_issue(conversation)
    socket_url = f"ws://127.0.0.1:{web_a.port}/ws/conversations/{conversation.pk}/?token={token}"

    async def scenario() -> tuple[list[dict[str, Any]], httpx.Response]:
        ready = asyncio.Event()
        watcher = asyncio.create_task(_watch_until_answer(socket_url, ready))
        await asyncio.wait_for(ready.wait(), 15)
        # When the same visitor's message is posted through the REST API on process B
        async with httpx.AsyncClient(base_url=web_b.url, timeout=15) as client:
            posted = await client.post(
                f"/api/v1/conversations/{conversation.pk}/messages",
                json={"text": "When does my order arrive?", "client_id": "m-1"},
                headers={"Authorization": f"Visitor {token}"},
            )
        return await watcher, posted

    events, posted = asyncio.run(scenario())

    # Then the socket on A saw the answer stream in, and then the stored answer
    assert posted.status_code == 201, posted.text
    kinds = [e["type"] for e in events]
    deltas = [e["delta"] for e in events if e["type"] == "text.delta"]
    assert kinds.index("text.delta") < len(kinds) - 1 and len(deltas) >= 2
    assert "".join(deltas) == ANSWER
    assert events[-1]["message"]["text"] == ANSWER
    user_seq = next(e["message"]["seq"] for e in events if e["type"] == "message" and e["message"]["kind"] == "user")
    assert events[-1]["seq"] > user_seq
    # and exactly one user message and one answer are stored
    stored = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("kind", "text"))
    assert stored == [("user", "When does my order arrive?"), ("assistant", ANSWER)]


def test_messages_posted_concurrently_through_both_processes_are_answered_in_order(scale):
    # Given a conversation and an API key's view of it on both processes
    scale.provider.responder = lambda body: fp.text(
        "Answer to " + [i for i in body["input"] if i.get("role") == "user"][-1]["content"], delay=0.2
    )
    conversation = conversation_create(channel="widget")
    headers = {"Authorization": f"Visitor {visitor_token_issue(conversation)}"}
    web_a, web_b = scale.cluster.processes[:2]

    async def post_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=15) as client:
            return list(await asyncio.gather(*(
                client.post(f"{web.url}/api/v1/conversations/{conversation.pk}/messages",
                            json={"text": f"question {n}", "client_id": f"q-{n}"}, headers=headers)
                for n, web in enumerate([web_a, web_b, web_a, web_b], start=1)
            )))

    # When four messages arrive at once, two through each process
    responses = asyncio.run(post_all())
    assert [r.status_code for r in responses] == [201] * 4

    # Then every one is answered, one turn at a time, in the order they were stored
    def all_done() -> list[Turn] | None:
        turns = list(Turn.objects.filter(conversation=conversation).order_by("user_message__seq"))
        return turns if len(turns) == 4 and all(t.is_finished for t in turns) else None

    turns = wait_for(all_done, timeout=40)
    assert [t.status for t in turns] == ["completed"] * 4, [t.error_message for t in turns]
    for earlier, later in zip(turns, turns[1:], strict=False):
        assert later.started_at >= earlier.finished_at
    questions = [t.user_message.text for t in turns]
    answers = list(
        Message.objects.filter(conversation=conversation, kind="assistant").order_by("seq").values_list("text", flat=True)
    )
    assert answers == [f"Answer to {q}" for q in questions]
    assert list(Message.objects.filter(conversation=conversation).values_list("seq", flat=True).order_by("seq")) == list(range(1, 9))
