"""Which web origins may talk to the platform's browser-facing doors.

An origin is compared as scheme + host + port, never by host name alone: a page on
another port or scheme of the platform's host is another origin.

- The platform's **own origin** is the one a request reached it at: its scheme (https
  when the connection is TLS, or `SECURE_PROXY_SSL_HEADER` says a TLS proxy took it) and
  its `Host` (which must be in `ALLOWED_HOSTS`), like Django's CSRF origin check; the
  origins in `CSRF_TRUSTED_ORIGINS`, which Django already trusts with staff sessions,
  count too. Only the own origin may use a staff session: the staff role on the
  conversation socket (the console's live view and try-it panel).
- **Embedding sites** (`SUPPORT_WIDGET_ORIGINS`, comma-separated) may use the widget
  doors (the customer socket, `POST /widget/session` with CORS). Entries:
  `https://shop.example.com` (that origin; a port other than the scheme's default must be
  written, `https://shop.example.com:8443`), `https://*.example.com` (any subdomain, not
  the domain itself), `*` (any site). An entry without a scheme (`shop.example.com`,
  `.example.com` for the domain and its subdomains) is the older form and means that
  host over https on port 443 only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from conversations.conf import platform_setting

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int


def parse_origin(value: str | None) -> Origin | None:
    """An `Origin` header (or an allow-list entry with a scheme) as scheme, host, port;
    None for "null", a missing value, or anything that is not an http(s) origin."""
    if not value or value == "null":
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    return Origin(scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme])


def _entry_matches(entry: str, origin: Origin) -> bool:
    entry = entry.strip().lower()
    if entry == "*":
        return True
    if "://" not in entry:  # older host-only form: https on the default port
        return origin.scheme == "https" and origin.port == 443 and validate_host(origin.host, [entry])
    wildcard = "://*." in entry
    allowed = parse_origin(entry.replace("://*.", "://", 1))
    if allowed is None or (allowed.scheme, allowed.port) != (origin.scheme, origin.port):
        return False
    if wildcard:
        return origin.host.endswith("." + allowed.host)
    return origin.host == allowed.host


def _own(origin: Origin, *, secure: bool, host: str | None) -> bool:
    if host:
        domain, port = split_domain_port(host)
        scheme = "https" if secure else "http"
        if (domain and validate_host(domain, _allowed_hosts())
                and origin == Origin(scheme, domain, int(port) if port else _DEFAULT_PORTS[scheme])):
            return True
    return any(parse_origin(trusted) == origin for trusted in settings.CSRF_TRUSTED_ORIGINS)


def _allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def _embedding_site(origin: Origin) -> bool:
    return any(_entry_matches(entry, origin) for entry in platform_setting("WIDGET_ORIGINS"))


# --- HTTP ---------------------------------------------------------------------------------


def request_origin_allowed(request: HttpRequest, value: str | None) -> bool:
    """True if a browser request with this `Origin` may use the widget's HTTP door."""
    origin = parse_origin(value)
    if origin is None:
        return False
    return _own(origin, secure=request.is_secure(), host=request.get_host()) or _embedding_site(origin)


# --- websockets -----------------------------------------------------------------------------


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _scope_secure(scope: dict[str, Any]) -> bool:
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        name, expected = proxy_header
        key = name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        return (header(scope, key) or "").split(",")[0].strip() == expected
    return False


def scope_is_own_origin(scope: dict[str, Any]) -> bool:
    """True if a websocket handshake comes from a page of the platform's own origin."""
    origin = parse_origin(header(scope, b"origin"))
    return origin is not None and _own(origin, secure=_scope_secure(scope), host=header(scope, b"host"))


def scope_origin_allowed(scope: dict[str, Any]) -> bool:
    """True if a websocket handshake may open the customer socket (own or embedding site)."""
    origin = parse_origin(header(scope, b"origin"))
    if origin is None:
        return "*" in platform_setting("WIDGET_ORIGINS") and header(scope, b"origin") is None
    return scope_is_own_origin(scope) or _embedding_site(origin)


class WebsocketOriginGuard:
    """Refuses a websocket handshake from an origin that may not open the conversation
    socket (403 from daphne): only the own origin or an embedding site. The staff role
    is then granted by `scope_is_own_origin` alone (`catchup.viewer_for`). Settings are
    read per connection, so test overrides apply."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not scope_origin_allowed(scope):
            return await WebsocketDenier.as_asgi()(scope, receive, send)
        return await self.application(scope, receive, send)
