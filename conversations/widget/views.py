"""`POST /widget/session`, the demo page (`/`) and the embed docs (`/widget/docs/`).

The session endpoint starts a widget conversation or resumes one from its visitor
token, and returns what the widget needs to connect. It is called from customer sites,
so it is cross-origin by design, and it is CSRF-safe without a CSRF token because it
uses no ambient authority: no cookie is read or set, the widget calls it with
`credentials: "omit"`, and the only thing that grants access to a conversation is the
signed visitor token the caller already holds in the request body. Anyone may start a
new anonymous conversation, which is what the widget offers every visitor anyway.
Browsers may call it from the site's own origin or one listed in `WIDGET_ORIGINS`.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from conversations.access import conversation_for_visitor, visitor_token_conversation_id, visitor_token_issue
from conversations.clientaddr import request_client_address
from conversations.conf import platform_setting
from conversations.errors import (
    InvalidInput,
    PayloadTooLarge,
    PermissionDenied,
    PlatformError,
    error_body,
    error_headers,
    unavailable_error,
)
from conversations.models import Conversation
from conversations.models.conversation import Channel
from conversations.ratelimit import rate_limit_hit
from conversations.services.conversations import conversation_create
from conversations.widget.catchup import agent_identity, model_info
from conversations.widget.origins import request_origin_allowed
from conversations.widget.presentation import read_seq, visitor_model

MAX_BODY_BYTES = 4096


def _cors(response: HttpResponse, origin: str | None) -> HttpResponse:
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    response["Cache-Control"] = "no-store"
    return response


def _error(exc: PlatformError) -> JsonResponse:
    return JsonResponse(error_body(exc), status=exc.status, headers=error_headers(exc))


def _body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"The request body is limited to {MAX_BODY_BYTES} bytes.")
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidInput("The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


def session_payload(conversation: Conversation, token: str) -> dict[str, Any]:
    return {
        "conversation": str(conversation.pk),
        "token": token,
        "websocket_path": f"/ws/conversations/{conversation.pk}/",
        "status": conversation.status,
        "ai_paused": conversation.ai_paused,
        "last_seq": conversation.next_seq - 1,
        "agent": agent_identity(conversation.agent),
        "model": visitor_model(model_info(conversation)),
        "read_seq": read_seq(conversation),
        "limits": {"max_message_chars": platform_setting("MAX_MESSAGE_CHARS")},
    }


class Throttled(PlatformError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _start_or_resume(data: dict[str, Any], client_ip: str) -> tuple[Conversation, int]:
    """Resume from a token, or start a conversation (new ones are rate limited per
    address so a script cannot fill the database with empty conversations)."""
    token = data.get("token")
    if token not in (None, ""):
        if not isinstance(token, str):
            raise InvalidInput("token must be a string.", fields={"token": "string"})
        conversation = conversation_for_visitor(token, visitor_token_conversation_id(token))
        return conversation, 200
    wait = rate_limit_hit(f"widget-session:{client_ip}", platform_setting("WIDGET_SESSION_RATE"))
    if wait is not None:
        raise Throttled(
            f"Too many new conversations from this address; try again in {int(wait) + 1} seconds.",
            retry_after=wait,
        )
    page = data.get("page")
    metadata = {"page": page[:500]} if isinstance(page, str) and page else {}
    return conversation_create(channel=Channel.WIDGET, metadata=metadata), 201


@csrf_exempt
def widget_session(request: HttpRequest) -> HttpResponse:
    """Start (no token) or resume (`{"token": ...}`) the visitor's conversation."""
    origin = request.headers.get("Origin")
    if origin and not request_origin_allowed(request, origin):
        return _error(PermissionDenied(
            "This site may not embed the chat widget; add it to SUPPORT_WIDGET_ORIGINS.",
            code="origin_not_allowed",
        ))
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), origin)
    if request.method != "POST":
        response = _error(PlatformError("Use POST.", code="method_not_allowed"))
        response.status_code = 405
        response["Allow"] = "POST, OPTIONS"
        return _cors(response, origin)
    try:
        conversation, status = _start_or_resume(_body(request), request_client_address(request))
        # A fresh token each time slides the token's expiry while the visitor keeps coming back.
        payload = session_payload(conversation, visitor_token_issue(conversation))
    except PlatformError as exc:
        return _cors(_error(exc), origin)
    except Exception as exc:
        # The database away is a 503 the embedding page may read (so: with CORS headers).
        unavailable = unavailable_error(exc)
        if unavailable is None:
            raise
        return _cors(_error(unavailable), origin)
    return _cors(JsonResponse(payload, status=status), origin)


def _widget_src(request: HttpRequest) -> str:
    return request.build_absolute_uri(static("widget/widget.js"))


@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    """A pretend shop that embeds the widget with one script tag, as a customer would."""
    return render(request, "widget/demo.html", {"widget_src": _widget_src(request)})


@require_GET
def docs_page(request: HttpRequest) -> HttpResponse:
    """How to embed the widget, and its options."""
    return render(request, "widget/docs.html", {
        "widget_src": _widget_src(request),
        "server": request.build_absolute_uri("/").rstrip("/"),
        "max_message_chars": platform_setting("MAX_MESSAGE_CHARS"),
    })
