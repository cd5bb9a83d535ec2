"""The console's live socket (the conversation websocket, staff role) when the channel layer loses its broker: the `layer.lost` notice
(which the Redis layers put in every grouped channel of the process, see
conversations/channel_layers/redis_layer.py) closes the socket with 4503, so the console page
reconnects and catches up by `seq`, instead of crashing on an unknown message type."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.agent.events import group_name
from conversations.channel_layers.redis_layer import LOST_MESSAGE_TYPE
from conversations.services.conversations import conversation_create
from tests.console.conftest import logged_in, make_staff
from tests.console.test_live import _ready, _socket

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_layer_losing_its_broker_closes_the_staff_socket_with_4503(default_agent, groups):
    staff = await sync_to_async(make_staff)("watcher", group="Support viewer")
    client = await sync_to_async(logged_in)(staff)
    conversation = await sync_to_async(conversation_create)(channel="widget")
    socket = await _socket(conversation.pk, client)
    connected, _ = await socket.connect()
    assert connected
    assert (await _ready(socket))["type"] == "ready"
    # When the layer tells the socket's channel that its broker went away
    await get_channel_layer().group_send(group_name(conversation.pk), {"type": LOST_MESSAGE_TYPE})
    # Then the socket closes with the documented code (the page reconnects and catches up)
    closed = await socket.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4503}
    await socket.disconnect()
