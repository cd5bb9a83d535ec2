"""Operator endpoints: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (ready).

`/metrics` answers only clients on an allowed network (`SUPPORT_METRICS_ALLOWED_IPS`,
loopback by default) or presenting `Authorization: Bearer <SUPPORT_METRICS_TOKEN>`.
The address is the client's as `conversations.clientaddr` decides it: behind a reverse
proxy set `SUPPORT_NUM_PROXIES`, or every request seems to come from the proxy (loopback).

`/healthz` says the process answers HTTP. `/readyz` says it can do its work: the
database answers a query and the channel layer carries a message; otherwise 503 with
which check failed (the exception class only, never connection strings). The Redis
layers check with a message on a channel of its own, so readiness follows Redis itself
(it is 200 again as soon as Redis answers) rather than waiting behind the process's
shared receive loop.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from conversations.clientaddr import request_client_address
from conversations.conf import platform_setting
from conversations.ops.metrics import render_metrics

CHECK_TIMEOUT_SECONDS = 3.0


def metrics_allowed(request: HttpRequest) -> bool:
    token = platform_setting("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request_client_address(request))
    except ValueError:
        return False
    for network in platform_setting("METRICS_ALLOWED_IPS"):
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "Metrics are available from allowed networks or with a bearer token.\n",
            status=403,
            content_type="text/plain",
        )
    body, content_type = render_metrics()
    return HttpResponse(body, content_type=content_type)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database_check() -> None:
    close_old_connections()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # A thread of the loop's default executor: give the pool its connection back
        # now, not at this thread's next check.
        connections["default"].close()


async def _channel_layer_check() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    check = getattr(layer, "readiness_check", None)
    if check is not None:  # the Redis layers: a round trip of its own, off the shared receive path
        await check()
        return
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz.ping"})
    message = await layer.receive(channel)
    if message.get("type") != "readyz.ping":
        raise RuntimeError("channel layer returned another message")


async def _timed(check: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


@never_cache
@require_GET
async def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": await _timed(sync_to_async(_database_check, thread_sensitive=False)),
        "channel_layer": await _timed(_channel_layer_check),
    }
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
