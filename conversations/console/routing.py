"""Websocket routes of the staff console (included by support/routing.py)."""

from __future__ import annotations

from django.urls import path

from conversations.console.consumers import StaffConversationConsumer

websocket_urlpatterns = [
    path("ws/staff/conversations/<uuid:conversation_id>/", StaffConversationConsumer.as_asgi()),
]
