"""The widget socket when the channel layer loses its broker: the `layer.lost` notice
(conversations/channel_layers/redis_layer.py puts it in every grouped channel of the process)
closes the socket with 4503, and a reconnect with `after=<last seq>` catches up on
what was stored meanwhile. The multi-process version with a real Redis restart is
tests/scale/test_redis_loss.py."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.access import visitor_token_issue
from conversations.agent.events import group_name
from conversations.channel_layers.redis_layer import LOST_MESSAGE_TYPE
from conversations.models.message import MessageKind
from conversations.services.conversations import conversation_create
from conversations.services.items import item_append
from conversations.widget import protocol
from tests.realtime.wsclient import WsClient, of_type

pytestmark = [pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


def _store_staff_text(conversation: Any, text: str) -> None:
    with transaction.atomic():
        item_append(conversation=conversation, kind=MessageKind.STAFF, text=text)


async def test_a_lost_broker_closes_the_widget_socket_with_4503_and_a_reconnect_catches_up(default_agent: Any):
    conversation = await db(conversation_create)(channel="widget")
    token = await db(visitor_token_issue)(conversation)
    path = f"/ws/conversations/{conversation.pk}/?token={token}"
    client = WsClient(path)
    assert await client.connect()
    await client.until(of_type("caught_up"))
    # When the layer tells the socket's channel its broker went away
    await get_channel_layer().group_send(group_name(conversation.pk), {"type": LOST_MESSAGE_TYPE})
    # Then it closes with the documented code
    assert await client.closed() == protocol.CLOSE_LIVE_DELIVERY_LOST == 4503
    # and what was stored while it was away arrives on the reconnect, by seq
    await db(_store_staff_text)(conversation, "Stored meanwhile.")
    again = WsClient(path + "&after=0")
    assert await again.connect()
    caught_up = await again.until(of_type("caught_up"))
    assert caught_up["last_seq"] == 1
    assert [e["message"]["text"] for e in again.events if e["type"] == "message"] == ["Stored meanwhile."]
    await again.close()
