"""The conversation websocket's rules: frame limits, close codes and the customer view.

Everything a client can get wrong is answered here without touching the database:
a frame that is not a JSON object with a known `type`, a frame larger than any valid
message could be, and frames sent faster than a person could. Each gets an `error`
event and is otherwise ignored; only a sustained flood closes the socket (4429).

The customer view (`customer_event`) is what a visitor may see of an engine event:
customer-visible messages only (never notes), tool activity in words rather than raw
tool output, and a failed turn's error code without the provider's error text; it is
`conversations.customer_view`, which the REST API uses for visitors too. Staff
connections receive events unchanged. docs/widget.md is the protocol reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conversations import customer_view

# Close codes (4000-4999 are the application's).
CLOSE_NOT_FOUND = 4404  # unknown conversation, bad or expired token, or not yours
CLOSE_TOO_MANY_FRAMES = 4429  # kept flooding after `rate_limited` errors
CLOSE_TOO_MANY_SOCKETS = 4429  # this visitor or address already holds its most sockets
# Live delivery broke (the channel layer lost Redis, or cannot reach it to join the
# conversation's group): reconnect soon with `after=<last seq>` and catch up.
CLOSE_LIVE_DELIVERY_LOST = 4503

# Frame allowances: a person types a few messages a minute; the widget sends typing
# hints at most every few seconds. Bursts are allowed, sustained floods are not.
FRAME_BURST = 30
FRAME_RATE = 10.0  # frames per second, sustained
MESSAGE_BURST = 8
MESSAGE_RATE = 0.5  # customer messages per second, sustained
REJECTED_BEFORE_CLOSE = 50  # rejected frames in one flood before closing with 4429
# A flood ends once this long passes with no rejected frame. Frames the bucket lets
# through mid-flood do not end it: otherwise a client flooding at just over the
# sustained rate would be rejected forever and never closed.
FLOOD_QUIET_SECONDS = 2.0
TYPING_MIN_INTERVAL = 1.0  # seconds; more frequent typing hints are dropped silently

CLIENT_FRAMES = ("message", "typing", "resume", "retry", "handoff", "rating")


def max_frame_chars(max_message_chars: int) -> int:
    """The largest frame that could carry a valid message: every character JSON-escaped
    (`\\uXXXX`, six characters) plus room for the other fields."""
    return max_message_chars * 6 + 1024


class FrameError(Exception):
    """A frame the server will not act on; becomes an `error` event."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra


def parse_frame(text: str | None, binary: bytes | None, *, limit: int) -> dict[str, Any]:
    """Decode one client frame into a dict with a known `type`, or raise FrameError."""
    if binary is not None or text is None:
        raise FrameError("malformed", "Frames must be JSON text, not binary.")
    if len(text) > limit:
        raise FrameError("too_large", f"Frame is {len(text)} characters; the limit is {limit}.")
    try:
        content = json.loads(text)
    except ValueError:
        raise FrameError("malformed", "Frame is not valid JSON.")
    if not isinstance(content, dict) or not isinstance(content.get("type"), str):
        raise FrameError("malformed", 'Frame must be a JSON object with a string "type".')
    if content["type"] not in CLIENT_FRAMES:
        raise FrameError(
            "unknown_type", f"Unknown frame type; expected one of {', '.join(CLIENT_FRAMES)}."
        )
    return content


def seq_value(raw: Any) -> int | None:
    """A non-negative seq from a frame or query string, or None if it is not one."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str) and raw.isdigit() and len(raw) < 12:
        return int(raw)
    return None


@dataclass
class TokenBucket:
    """Allow `burst` events at once and `rate` per second after that."""

    burst: float
    rate: float
    tokens: float = field(default=-1.0)
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def error_event(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}


def customer_message(message: dict[str, Any], *, activity: str = "") -> dict[str, Any] | None:
    """What a visitor sees of one stored item: `conversations.customer_view`'s answer,
    the same on every door."""
    return customer_view.customer_message(message, activity=activity)


def customer_event(
    event: Mapping[str, Any], *, activity_for: Any, sources: list[dict[str, str]] | None = None
) -> Mapping[str, Any] | None:
    """The customer view of one engine event; None means do not send it."""
    return customer_view.customer_event(event, activity_for=activity_for, sources=sources)
