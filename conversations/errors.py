"""The platform's one application error type, raised by services and mapped to HTTP,
websocket and admin messages by each door (the API maps `status` to the response code)."""

from __future__ import annotations

from typing import Any


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
