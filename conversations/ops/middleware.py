"""Request ids: every HTTP request gets one, in the logs and in the `X-Request-ID` header.

An id sent by the proxy in front (`X-Request-ID`, letters, digits, `-_.:` only, at most
100 characters) is kept so one id follows a request across systems; otherwise a new one
is made. One access line per request is logged at info level with the method, the path
without its query string (query strings can hold tokens), the status, the duration and
the client address (`conversations.clientaddr`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from conversations.clientaddr import request_client_address
from conversations.ops.logcontext import request_id_var

logger = logging.getLogger("support.request")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
# Scrapes and probes every few seconds would drown the access log.
_QUIET_PATHS = ("/metrics", "/healthz", "/readyz")


def _request_id(request: HttpRequest) -> str:
    sent = request.headers.get("X-Request-ID", "")
    return sent if _VALID_ID.match(sent) else uuid.uuid4().hex


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        token, started = self._begin(request)
        try:
            response = self.get_response(request)
            self._end(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token, started = self._begin(request)
        try:
            response = await self.get_response(request)
            self._end(request, response, started)
            return response
        finally:
            request_id_var.reset(token)

    def _begin(self, request: HttpRequest) -> tuple[Any, float]:
        request.request_id = _request_id(request)  # type: ignore[attr-defined]
        return request_id_var.set(request.request_id), time.monotonic()  # type: ignore[attr-defined]

    def _end(self, request: HttpRequest, response: HttpResponse, started: float) -> None:
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        if request.path in _QUIET_PATHS and response.status_code < 400:
            return
        client = request_client_address(request)
        logger.info(
            "%s %s %s %s",
            client or "-",
            request.method,
            request.path,
            response.status_code,
            extra={
                "client": client,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": int((time.monotonic() - started) * 1000),
            },
        )
