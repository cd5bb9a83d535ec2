"""Fixed-window rate limits in the shared cache (Redis in scale mode), for every door.

`cache.add` then `cache.incr` is atomic on Redis and on the local-memory cache, so
processes sharing Redis share the limit. Fixed windows allow a burst of up to twice the
rate across a window boundary; that is the price of two cache operations per request.
"""

from __future__ import annotations

import time

from django.core.cache import cache

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


def rate_limit_hit(ident: str, rate: str) -> float | None:
    """Count one request for `ident`; None when within `rate`, else seconds to wait."""
    parsed = parse_rate(rate)
    if parsed is None:
        return None
    limit, period = parsed
    now = time.time()
    window = int(now // period)
    key = f"rate:{ident}:{period}:{window}"
    cache.add(key, 0, timeout=period + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=period + 1)
        count = 1
    if count <= limit:
        return None
    return (window + 1) * period - now
