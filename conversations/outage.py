"""A database outage answered as 503 Service Unavailable, never as a 500.

When PostgreSQL is unreachable (restarting, failing over, a network cut) or the
process's connection pool cannot hand out a connection in time, Django raises
`OperationalError` or `InterfaceError`. That is not a bug in the request: it is a
temporary condition the client should retry, so the answer is the platform's
`ServiceUnavailable` (`conversations.errors`): a 503 with `Retry-After`, as JSON in the
API's error shape (`{"error": {"code": "service_unavailable", "message", "fields"}}`)
for API clients and as a short page for people. The API's own exception handler, the
widget's session endpoint and the console's try-it panel answer the same. Nothing
needs restarting when the database returns: the next checkout from the pool connects
again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape

from conversations.errors import ServiceUnavailable, error_body, error_headers, unavailable_error

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.path.startswith("/api/")
        or "application/json" in accept
        or "text/event-stream" in accept
        or request.content_type == "application/json"
    )


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    error = ServiceUnavailable()
    if _wants_json(request):
        response = HttpResponse(json.dumps(error_body(error)), status=error.status, content_type="application/json")
    else:
        page = (
            "<!doctype html><meta charset=utf-8><title>Service unavailable</title>"
            f"<h1>Service unavailable</h1><p>{escape(error.message)}</p>"
        )
        response = HttpResponse(page, status=error.status, content_type="text/html; charset=utf-8")
    for name, value in error_headers(error).items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Maps database connectivity errors raised while handling a request to a 503.

    Place it last in MIDDLEWARE so it sees a view's exception first. It covers every
    HTTP door (API, admin, widget pages), including sessions and users loaded lazily
    inside the view."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if unavailable_error(exception) is None:
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response(request)
