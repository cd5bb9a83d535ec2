"""The client's address, decided in one place for every door.

Behind reverse proxies the TCP peer is the nearest proxy, and the client's address is in
`X-Forwarded-For`, which each proxy extends with the address it received the request
from. Only the entries the trusted proxies added can be believed: anything to their left
was sent by the client and may be forged. With `SUPPORT_NUM_PROXIES = N` (env, default
0), the client address is the N-th entry from the right; with 0, or no header, it is the
TCP peer. The proxy nearest the client must overwrite the header, not append to it
(nginx: `proxy_set_header X-Forwarded-For $remote_addr;`), and daphne must run without
`--proxy-headers`, which would take the leftmost entry, the client's own choice.

Metrics access, rate limits (REST API, `POST /widget/session`, websocket sockets per
address) and the access log all use `request_client_address` / `scope_client_address`.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.http import HttpRequest

from conversations.conf import platform_setting


def _valid(address: str) -> str | None:
    address = address.strip()
    if address.startswith("[") and "]" in address:
        address = address[1:address.index("]")]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, num_proxies: int | None = None) -> str:
    """The client's address from the TCP `peer` and the `X-Forwarded-For` value.

    An entry that is not an IP address (a proxy misconfiguration) is not trusted: the
    peer's address is used instead. Returns "" when there is no usable address at all.
    """
    trusted = platform_setting("NUM_PROXIES") if num_proxies is None else num_proxies
    peer_address = _valid(peer or "") or ""
    if trusted <= 0 or not forwarded_for:
        return peer_address
    entries = [entry for entry in forwarded_for.split(",") if entry.strip()]
    if not entries:
        return peer_address
    return _valid(entries[-min(trusted, len(entries))]) or peer_address


def request_client_address(request: HttpRequest) -> str:
    """The client address of a Django request (daphne's peer is `REMOTE_ADDR`)."""
    return client_address(request.META.get("REMOTE_ADDR", ""), request.META.get("HTTP_X_FORWARDED_FOR"))


def scope_client_address(scope: dict[str, Any]) -> str:
    """The client address of an ASGI connection scope (a websocket handshake)."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    values = [value.decode("latin1") for key, value in scope.get("headers", []) if key == b"x-forwarded-for"]
    return client_address(peer, ",".join(values) if values else None)
