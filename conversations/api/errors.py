"""One error shape for every API failure, and the one handler that produces it.

Every 4xx/5xx under `/api/` answers `{"error": {"code", "message", "fields"}}`:
`PlatformError`s raised by services carry their own status, code and field details;
a database that cannot be reached (or a pool with no connection to give) is the
platform's `ServiceUnavailable`, a 503 with `Retry-After`, as on every other door
(`conversations.errors.unavailable_error`); DRF's exceptions (validation, parse errors,
authentication, throttling) and anything unexpected are mapped here. Unexpected
exceptions are logged and answer a 500 with no internals. `not_found` /
`server_error` give Django's 404/500 pages the same shape for API paths (URLs that
match no view).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from conversations.errors import PlatformError, error_headers, unavailable_error

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[Exception], str]] = [
    (drf.ParseError, "malformed_request"),
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "authentication_failed"),
    (drf.PermissionDenied, "forbidden"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
]


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _text(detail: Any) -> str:
    """Flatten DRF error details (strings, lists, nested dicts) into one string."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_text(value)}" for key, value in detail.items())
    if isinstance(detail, list | tuple):
        return " ".join(_text(item) for item in detail)
    return str(detail)


def _validation_body(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        fields = {str(name): _text(value) for name, value in detail.items()}
        general = fields.pop("non_field_errors", None)
        summary = general or "; ".join(f"{name}: {text}" for name, text in fields.items())
        return error_body("invalid", f"Invalid input. {summary}".strip(), fields)
    return error_body("invalid", _text(detail) or "Invalid input.")


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER for the API views: always a Response in the one shape."""
    headers: dict[str, str] = {}
    unavailable = unavailable_error(exc)
    if unavailable is not None:
        logger.warning("database unavailable: %s", exc)
        exc = unavailable
    if isinstance(exc, PlatformError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.fields), status=exc.status, headers=error_headers(exc))
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("too_large", "The request body is too large."), status=413)
    if isinstance(exc, drf.ValidationError):
        set_rollback()
        return Response(_validation_body(exc.detail), status=400)
    if isinstance(exc, drf.APIException):
        set_rollback()
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "error")
        auth_header = getattr(exc, "auth_header", None)  # set by the authentication exceptions
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)  # Throttled's; its stub does not declare it
        if isinstance(exc, drf.Throttled) and wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        message = _text(exc.detail)
        if isinstance(exc, drf.ParseError) and "JSON" in message and not message.startswith("Malformed"):
            message = f"Malformed JSON: {message}"
        return Response(error_body(code, message), status=exc.status_code, headers=headers)
    logger.exception("unhandled API error", exc_info=exc)
    set_rollback()
    return Response(error_body("internal", "Internal server error."), status=500)


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: JSON for API paths, the normal page elsewhere."""
    if is_api_path(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's handler500: JSON for API paths, the normal page elsewhere."""
    if is_api_path(request):
        return JsonResponse(error_body("internal", "Internal server error."), status=500)
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)
