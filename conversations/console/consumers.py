"""The staff websocket: live events of one conversation for the console's pages.

`ws/staff/conversations/<uuid>/` authenticates with the admin session (the ASGI app's
AuthMiddlewareStack) and authorises with `conversation_for_staff`, the same access
function as the console's HTTP views; anyone else is refused before the handshake
completes. It relays the conversation's group events (`conversations.agent.events`)
unchanged and accepts nothing from the browser: staff act through the console's HTTP
actions. Events are hints; the page catches up by `seq` from the database. When the
channel layer loses its broker (`layer.lost`), or cannot join the group, the socket
closes with 4503 and the page reconnects and catches up.

The group also carries the widget's typing hints (`conversation.typing`, see
`conversations.realtime.consumer`); the console does not show them, so this socket
ignores them deliberately. Channels closes a consumer on a message type it has no
handler for, so every type the group can carry has one here.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.access import conversation_for_staff
from conversations.agent.events import group_name, hello_for
from conversations.errors import NotFound
from conversations.ops.metrics import websocket_closed, websocket_opened

CLOSE_NOT_FOUND = 4404
CLOSE_LIVE_DELIVERY_LOST = 4503  # conversations.realtime.protocol: reconnect and catch up


class StaffConversationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    counted = False

    async def connect(self) -> None:
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        try:
            conversation = await database_sync_to_async(conversation_for_staff)(
                self.scope.get("user"), conversation_id
            )
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        try:
            await self.channel_layer.group_add(group_name(conversation.pk), self.channel_name)
        except Exception:
            await self.accept()
            await self.close(code=CLOSE_LIVE_DELIVERY_LOST)
            return
        self.group = group_name(conversation.pk)
        await self.accept()
        websocket_opened()
        self.counted = True
        await self.send_json(hello_for(conversation))

    async def disconnect(self, code: int) -> None:
        if self.counted:
            websocket_closed()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Read-only socket: anything the browser sends is ignored."""

    async def conversation_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])

    async def conversation_typing(self, message: dict[str, Any]) -> None:
        """Typing hints from the widget: not shown in the console."""

    async def layer_lost(self, message: dict[str, Any]) -> None:
        """The channel layer lost its broker: close so the page reconnects and catches up."""
        await self.close(code=CLOSE_LIVE_DELIVERY_LOST)
