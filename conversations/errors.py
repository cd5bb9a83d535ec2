"""The platform's one application error type, raised by services and mapped to HTTP,
websocket and admin messages by each door (the API maps `status` to the response code).

`unavailable_error` is the one place that decides what a database failure means: an
unreachable database or a connection pool that gave no connection in time is not the
request's fault but a moment to wait, `ServiceUnavailable` (503, `Retry-After`). The
API's exception handler, the outage middleware (`conversations.outage`), the
widget's session endpoint and the console's try-it panel all answer it the same way,
as `error_body` shows.
"""

from __future__ import annotations

from typing import Any

from django.db import InterfaceError, OperationalError


class PlatformError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, code: str | None = None, fields: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class InvalidInput(PlatformError):
    status = 400
    code = "invalid"


class PayloadTooLarge(PlatformError):
    status = 413
    code = "too_large"


class NotFound(PlatformError):
    status = 404
    code = "not_found"


class Conflict(PlatformError):
    status = 409
    code = "conflict"


class PermissionDenied(PlatformError):
    status = 403
    code = "forbidden"


class ServiceUnavailable(PlatformError):
    status = 503
    code = "service_unavailable"
    retry_after = 5  # seconds, sent as Retry-After

    def __init__(self, message: str = (
        "The service is briefly unavailable (its database cannot be reached). Please retry in a few seconds."
    )) -> None:
        super().__init__(message)


def unavailable_error(exc: BaseException) -> ServiceUnavailable | None:
    """The `ServiceUnavailable` a database connectivity failure means, else None.
    Django raises `OperationalError` (server unreachable, connection lost, the pool's
    checkout timed out) or `InterfaceError` (a connection already closed)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return ServiceUnavailable()
    return None


def error_body(exc: PlatformError) -> dict[str, Any]:
    """The one JSON shape of an error: `{"error": {"code", "message", "fields"}}`."""
    return {"error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}


def error_headers(exc: PlatformError) -> dict[str, str]:
    retry_after = getattr(exc, "retry_after", None)
    return {"Retry-After": str(max(1, int(retry_after + 0.999)))} if retry_after else {}
