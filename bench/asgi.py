"""The ASGI entry the scale benchmark serves: the platform's own application plus one
door, `POST /bench/messages`, that posts a customer message through `message_post`
(the service the REST API's create call uses), so load reaches the engine of the daphne
process that took the request, as it will through the REST API. Nothing else differs:
every other path goes to `support.asgi.application`. Started by bench/scale_load.py
through the Procfile's web line (SUPPORT_ASGI_APP=bench.asgi:application).
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

# isort: off
from support.asgi import application as platform_application  # sets Django up first
from conversations.agent.engine import engine
from conversations.models import Conversation
from conversations.services.messages import message_post
# isort: on


def _post(conversation_id: str, text: str, client_id: str) -> dict[str, Any]:
    close_old_connections()
    try:
        conversation = Conversation.objects.select_related("agent").get(pk=conversation_id)
        result = message_post(conversation=conversation, text=text, client_id=client_id)
        return {"seq": result.message.seq, "turn": str(result.turn.id) if result.turn else None}
    finally:
        close_old_connections()


async def _read_body(receive: Any) -> bytes:
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    return body


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/bench/messages" and scope["method"] == "POST":
        engine.bind()
        try:
            data = json.loads(await _read_body(receive))
            result = await sync_to_async(_post, thread_sensitive=False)(
                data["conversation"], data["text"], data.get("client_id", "")
            )
            status, payload = 201, result
        except Exception as exc:  # the benchmark counts these as errors
            status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
        return
    await platform_application(scope, receive, send)
