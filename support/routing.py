"""Websocket routes (the widget door and staff live views register theirs here)."""

from __future__ import annotations

from conversations.console.routing import websocket_urlpatterns as console_websocket_urlpatterns

websocket_urlpatterns: list = []
websocket_urlpatterns += console_websocket_urlpatterns
