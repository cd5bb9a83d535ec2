"""Websocket routes: the customer widget's conversation socket and the staff live view."""

from __future__ import annotations

from conversations.console.routing import websocket_urlpatterns as console_urlpatterns
from conversations.realtime.routing import websocket_urlpatterns as realtime_urlpatterns

websocket_urlpatterns: list = [*realtime_urlpatterns, *console_urlpatterns]
