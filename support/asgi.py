"""ASGI entry point: HTTP through Django, websockets through Channels.

The engine (turn runner) is bound to the server's event loop on the first connection,
so turns run, and their events are published, on the loop the consumers live on.
"""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations.agent.engine import engine  # noqa: E402
from conversations.widget.origins import WebsocketOriginGuard  # noqa: E402
from support.routing import websocket_urlpatterns  # noqa: E402


class BindEngine:
    """Binds the engine to the server's running loop before handing on the scope."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            engine.bind()
        return await self.app(scope, receive, send)


application = BindEngine(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": WebsocketOriginGuard(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)

# Everything loaded so far (Django, the models, the SDK) lives as long as the process.
# Freezing it keeps full garbage collections, which pause the event loop, to the objects
# connections and turns create: with 1,000 open widget sockets the pauses were a third
# shorter (bench/widget_load.py, 185 ms instead of 270 ms at worst).
gc.collect()
gc.freeze()
