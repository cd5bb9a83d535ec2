"""The Content-Security-Policy every page of the platform is served with.

The admin, the staff console, the operations dashboard, the API docs (Swagger UI from
drf-spectacular-sidecar, served by the project) and the widget's pages load scripts and
styles only from the platform itself and contain no inline script, inline event handler
or inline CSS, so the policy needs no `'unsafe-inline'` and no nonces. Websockets and
fetches go to the platform's own origin (`'self'` covers ws: and wss: of it). Swagger UI
and the admin use `data:` images.

`SUPPORT_CSP` replaces the policy (a blank value sends none); a response that already
carries a policy keeps it. The widget script on a customer's page is governed by that
page's policy, not this one (docs/security.md says what it must allow).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from conversations.conf import platform_setting

DEFAULT_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = platform_setting("CSP")
        policy = DEFAULT_POLICY if policy is None else policy
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
