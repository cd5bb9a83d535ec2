"""Which web origins may talk to the platform's customer-facing doors.

The site's own hosts (`ALLOWED_HOSTS`) always may. Customer sites that embed the
widget are listed in `SUPPORT_PLATFORM["WIDGET_ORIGINS"]` (env `SUPPORT_WIDGET_ORIGINS`,
comma-separated; `shop.example.com`, `.example.com` for a domain and its subdomains,
`https://shop.example.com:8443` to pin scheme and port, or `*` for any site).
The websocket handshake and the widget's session endpoint apply the same list. Only
the site's own origins may use a staff session over the websocket.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from conversations.conf import platform_setting


def own_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def allowed_origins() -> list[str]:
    return own_hosts() + list(platform_setting("WIDGET_ORIGINS"))


def origin_allowed(origin: str | None) -> bool:
    """True if a request with this `Origin` header may use the widget doors."""
    if not origin:
        return False
    validator = OriginValidator(None, allowed_origins())
    return validator.valid_origin(urlparse(origin))


def is_own_origin(origin: str | None) -> bool:
    """True if `origin` is one of the site's own hosts (not merely an embedding site)."""
    if not origin:
        return False
    domain, _port = split_domain_port(urlparse(origin).netloc)
    return bool(domain) and validate_host(domain, own_hosts())


def header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


class WidgetOriginValidator(OriginValidator):
    """`OriginValidator` over `allowed_origins()`, read per connection so settings
    changes (and test overrides) apply without rebuilding the application."""

    def __init__(self, application: Any) -> None:
        super().__init__(application, [])

    def valid_origin(self, parsed_origin: Any) -> bool:
        self.allowed_origins = allowed_origins()
        return super().valid_origin(parsed_origin)
