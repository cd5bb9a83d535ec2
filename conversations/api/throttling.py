"""Per-caller rate limits in the shared cache (Redis in scale mode), 429 + Retry-After.

A fixed window per caller: API keys by key (each key may carry its own rate), visitors
by their conversation, staff by user, anonymous callers by address. `cache.add` then
`cache.incr` is atomic on Redis and on the local-memory cache, so processes sharing
Redis share the limit. Fixed windows allow a burst of up to twice the rate across a
window boundary; that is the price of two cache operations per request.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from conversations.api.principals import ANONYMOUS, Principal
from conversations.conf import platform_setting

_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, int] | None:
    """'600/min' -> (600, 60); a blank rate means unlimited (None)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    try:
        return int(count), _PERIODS[period.strip().lower()]
    except (ValueError, KeyError):
        raise ValueError(f"Invalid rate {rate!r}; use e.g. '600/min' or '20/s'.") from None


def rate_for(principal: Principal) -> str:
    if principal.kind == "key" and principal.key.rate_limit:
        return principal.key.rate_limit
    return platform_setting(f"API_RATE_{principal.kind.upper()}")


class PrincipalRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        self.retry_after: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        principal = request.auth if isinstance(request.auth, Principal) else ANONYMOUS
        parsed = parse_rate(rate_for(principal))
        if parsed is None:
            return True
        limit, period = parsed
        ident = principal.throttle_ident
        if principal.kind == "anonymous":
            ident = f"anonymous:{self.get_ident(request)}"
        now = time.time()
        window = int(now // period)
        key = f"api-throttle:{ident}:{period}:{window}"
        cache.add(key, 0, timeout=period + 1)
        try:
            count = cache.incr(key)
        except ValueError:  # evicted between add and incr
            cache.set(key, 1, timeout=period + 1)
            count = 1
        if count <= limit:
            return True
        self.retry_after = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_after
