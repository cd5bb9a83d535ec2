"""A database outage answered as 503 Service Unavailable, never as a 500.

When PostgreSQL is unreachable (restarting, failing over, a network cut) or the
process's connection pool cannot hand out a connection in time, Django raises
`OperationalError` or `InterfaceError`. That is not a bug in the request: it is a
temporary condition the client should retry, so the answer is a 503 with `Retry-After`,
as JSON for API clients (the platform's error shape: code, message, fields) and as a
short page for people. Nothing needs restarting when the database returns: the next
checkout from the pool connects again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.html import escape

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MESSAGE = "The service is briefly unavailable (its database cannot be reached). Please retry in a few seconds."


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.path.startswith("/api/")
        or "application/json" in accept
        or "text/event-stream" in accept
        or request.content_type == "application/json"
    )


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        body = json.dumps({"code": "service_unavailable", "message": MESSAGE, "fields": {}})
        response = HttpResponse(body, status=503, content_type="application/json")
    else:
        page = (
            "<!doctype html><meta charset=utf-8><title>Service unavailable</title>"
            f"<h1>Service unavailable</h1><p>{escape(MESSAGE)}</p>"
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """Maps database connectivity errors raised while handling a request to a 503.

    Place it last in MIDDLEWARE so it sees a view's exception first. It covers every
    HTTP door (API, admin, widget pages), including sessions and users loaded lazily
    inside the view."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning("database unavailable for %s %s: %s", request.method, request.path, exception)
        return database_unavailable_response(request)
