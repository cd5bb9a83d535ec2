"""How many customer websockets one visitor, and one client address, may hold open.

Counted per process, on its event loop (connect and disconnect run there, so no lock):
`SUPPORT_WS_MAX_PER_VISITOR` sockets per conversation a visitor token opens (several tabs
are normal; hundreds are a script) and `SUPPORT_WS_MAX_PER_ADDRESS` per client address
(`conversations.clientaddr`, so set `SUPPORT_NUM_PROXIES` behind a proxy). 0 turns a limit
off. With several web processes each enforces the limits on its own share. A socket over
a limit gets a `too_many_sockets` error and the close code 4429.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from conversations.clientaddr import scope_client_address
from conversations.conf import platform_setting
from conversations.widget.catchup import VISITOR, Viewer

_open: Counter[str] = Counter()


def socket_acquire(scope: dict[str, Any], viewer: Viewer) -> list[str] | None:
    """Count this socket against its limits; None (nothing counted) when one is full."""
    limits: list[tuple[str, int]] = []
    if viewer.role == VISITOR:
        limits.append((f"visitor:{viewer.conversation.pk}", platform_setting("WS_MAX_PER_VISITOR")))
    address = scope_client_address(scope)
    if address:
        limits.append((f"address:{address}", platform_setting("WS_MAX_PER_ADDRESS")))
    counted = [key for key, limit in limits if limit > 0]
    if any(_open[key] >= limit for key, limit in limits if limit > 0):
        return None
    for key in counted:
        _open[key] += 1
    return counted


def socket_release(keys: list[str] | None) -> None:
    for key in keys or ():
        _open[key] -= 1
        if _open[key] <= 0:
            del _open[key]
