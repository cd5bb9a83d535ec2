"""Websocket routes: the conversation socket (`conversations.widget.routing`), the one
websocket customers' widgets and the staff console's pages connect to."""

from __future__ import annotations

from conversations.widget.routing import websocket_urlpatterns as widget_urlpatterns

websocket_urlpatterns: list = [*widget_urlpatterns]
