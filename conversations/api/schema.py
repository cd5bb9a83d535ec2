"""OpenAPI pieces shared by the views: path parameters, error responses, the event
stream response, the authentication schemes, and the hook that keeps the published
schema to the `/api/v1/` endpoints."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from conversations.agent.events import StreamTimeoutEvent, engine_event_types, event_types
from conversations.api.schema_shapes import ErrorSerializer

CONVERSATION_ID = OpenApiParameter("conversation_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
TURN_ID = OpenApiParameter("turn_id", OpenApiTypes.UUID, OpenApiParameter.PATH)

_ERROR_TEXT = {
    400: "Invalid input or malformed JSON.",
    401: "No credentials, or invalid ones.",
    403: "Authenticated, but not allowed to do this (e.g. a missing scope).",
    404: "No such object, or not yours.",
    409: "Conflicts with the object's state (e.g. the turn already finished).",
    413: "The body or the message is larger than allowed.",
    429: "Too many requests; see Retry-After.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorSerializer, description=_ERROR_TEXT[code]) for code in codes}


ANSWER_MODES = (
    "Three ways to get the answer: poll the turn (the default); `?wait=N` to answer after the "
    "turn finished or N seconds passed (with the stored answer items); or `Accept: "
    "text/event-stream` to stream the conversation's events (the websocket's events: "
    "message, turn.queued, turn.started, text.delta, turn.commentary, tool.started, "
    "tool.finished, turn.completed / turn.failed / turn.cancelled) until the turn ends."
)

# What the SSE stream sends: the engine's events and its own closing `stream.timeout`.
STREAM_EVENT_TYPES = [*engine_event_types(), *event_types(StreamTimeoutEvent)]

STREAM_RESPONSE = OpenApiResponse(
    {
        "type": "object",
        "description": "One Server-Sent Event. `data` is the event as JSON, exactly as the "
        "websocket sends it (it always carries `type` and `conversation`; `turn` when it "
        "belongs to a turn; message events carry `seq` and the stored `message`).",
        "properties": {
            "event": {"type": "string", "enum": STREAM_EVENT_TYPES},
            "data": {"type": "string"},
        },
        "required": ["event", "data"],
    },
    description="Server-Sent Events until the turn's terminal event (turn.completed after its "
    "stored items, turn.failed or turn.cancelled), or stream.timeout. `: keepalive` comments "
    "during silence. The stream carries every event of the conversation; the X-Turn-Id "
    "header names the turn it follows and X-Message-Seq the customer message.",
)


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "conversations.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "sk_...",
            "description": "An API key created in the admin: `Authorization: Bearer sk_...`.",
        }


class VisitorScheme(OpenApiAuthenticationExtension):
    target_class = "conversations.api.auth.VisitorTokenAuthentication"
    name = "visitorToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Visitor <token>`, the token returned when the conversation was created.",
        }


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "conversations.api.auth.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A staff member's admin session (unsafe methods need the X-CSRFToken header).",
        }


def only_public_api(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """PREPROCESSING_HOOK: publish the `/api/v1/` endpoints only."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/v1/")]
