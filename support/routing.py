"""Websocket routes (the widget door and staff live views register theirs here)."""

from __future__ import annotations

websocket_urlpatterns: list = []
