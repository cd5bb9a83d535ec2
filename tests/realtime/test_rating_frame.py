"""The widget socket's `rating` frame: the customer rates a resolved conversation once
per resolution; an open conversation, a second rating and a bad score are refused with
an `error` event that stores nothing. Who may send it is in test_authorization.py."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from conversations.access import visitor_token_issue
from conversations.agent.engine import engine
from conversations.models import CsatRating
from conversations.services.conversations import conversation_create, conversation_set_status
from tests.realtime.wsclient import WsClient, of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


@pytest.fixture(autouse=True)
async def _turns_finish():
    yield
    await engine.wait_idle()


def _answer(event: dict[str, Any]) -> bool:
    return event["type"] in ("ack", "error") and event.get("frame") == "rating"


async def test_the_rating_frame_rates_once_and_refuses_what_it_should(default_agent, offline):
    conversation = await db(conversation_create)(channel="widget")
    client = WsClient(path=f"/ws/conversations/{conversation.pk}/?token={visitor_token_issue(conversation)}")
    assert await client.connect()
    ready = await client.until(of_type("ready"))
    assert (ready["resolution"], ready["rated"]) == (0, False)
    await client.until(of_type("caught_up"))
    # Open: refused
    await client.send({"type": "rating", "score": 4})
    assert (await client.until(_answer))["code"] == "not_resolved"
    # Resolved: the socket hears the new resolution, and the rating is stored
    await db(conversation_set_status)(conversation=conversation, status="resolved")
    updated = await client.until(of_type("conversation.updated"))
    assert (updated["status"], updated["resolution"]) == ("resolved", 1)
    await client.send({"type": "rating", "score": 9})
    refused = await client.until(_answer)
    assert (refused["type"], refused["code"], refused["fields"]) == ("error", "invalid", {"score": "invalid"})
    await client.send({"type": "rating", "score": 5, "comment": "Lovely."})
    assert (await client.until(_answer))["type"] == "ack"
    await client.send({"type": "rating", "score": 1})
    assert (await client.until(_answer))["code"] == "already_rated"
    assert await db(lambda: list(CsatRating.objects.values_list("score", "comment")))() == [(5, "Lovely.")]
    await client.close()
    # A new connection is told this resolution is rated (another device asks no more)
    again = WsClient(path=f"/ws/conversations/{conversation.pk}/?token={visitor_token_issue(conversation)}")
    assert await again.connect()
    ready = await again.until(of_type("ready"))
    assert (ready["resolution"], ready["rated"]) == (1, True)
    await again.close()
