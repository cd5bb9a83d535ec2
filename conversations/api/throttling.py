"""Per-caller API rate limits (429 + Retry-After), on `conversations.ratelimit`.

A fixed window per caller: API keys by key (each key may carry its own rate), visitors
by their conversation, staff by user, anonymous callers by address (the one
`conversations.clientaddr` decides).
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from conversations.api.principals import ANONYMOUS, Principal
from conversations.clientaddr import request_client_address
from conversations.conf import platform_setting
from conversations.ratelimit import rate_limit_hit


def rate_for(principal: Principal) -> str:
    if principal.kind == "key" and principal.key.rate_limit:
        return principal.key.rate_limit
    return platform_setting(f"API_RATE_{principal.kind.upper()}")


class PrincipalRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.auth if isinstance(request.auth, Principal) else ANONYMOUS
        ident = principal.throttle_ident
        if principal.kind == "anonymous":
            ident = f"anonymous:{request_client_address(request)}"
        self.retry_after = rate_limit_hit(f"api:{ident}", rate_for(principal))
        return self.retry_after is None

    def wait(self) -> float | None:
        return self.retry_after
