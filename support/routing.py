"""Websocket routes (the widget door and staff live views register theirs here)."""

from __future__ import annotations

from conversations.realtime.routing import websocket_urlpatterns as realtime_urlpatterns

websocket_urlpatterns: list = [
    *realtime_urlpatterns,
]
