"""Websocket routes of the widget door (included by `support.routing`).

The id is matched as any path segment and validated by the consumer, so a malformed
id gets the same 4404 close as a foreign one instead of a routing error.
"""

from __future__ import annotations

from django.urls import path

from conversations.widget.consumer import ConversationConsumer

websocket_urlpatterns = [
    path("ws/conversations/<str:conversation_id>/", ConversationConsumer.as_asgi()),
]
