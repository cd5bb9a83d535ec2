"""`python -m support.serve [daphne options] support.asgi:application`: daphne with the
platform's connection limits. The Procfile's `web` process runs it.

daphne (4.2) has no deadline for receiving a request: Twisted's idle timeout (12 hours
by default) restarts with every byte, so a client sending one header line, or one body
byte, every few seconds holds a connection for ever. And a websocket message over
`--websocket-max-message-size` makes autobahn drop the TCP connection without a close
frame (its `failByDrop`), so the client sees 1006 and cannot tell why. This launcher
runs daphne's own command line with three changes:

- a request must arrive whole (request line, headers and body) within
  `SUPPORT_HTTP_REQUEST_SECONDS` (60) of its first line, or it is answered 408 and closed;
- a connection idle for `SUPPORT_HTTP_IDLE_SECONDS` (60) between requests, or between
  the bytes of one, is closed (Twisted's idle timeout; never while a response streams);
- a websocket frame or message over daphne's size limits (1 MiB by default) closes the
  socket with 1009 (message too big) instead of dropping it;
- a websocket client that sends frames faster than the application reads them (more
  than `SUPPORT_WS_MAX_PENDING_FRAMES`, 200, waiting) is closed with 4429. A flood of
  small frames otherwise fills daphne's unbounded queue faster than the consumer can
  answer, so the consumer's own flood rule (4429 after 50 refused frames) never ran and
  memory grew until the connection broke (1006);
- every `SUPPORT_MALLOC_TRIM_SECONDS` (60; 0 turns it off) glibc's `malloc_trim` hands
  the heap's free pages back to the system. Requests and turns free their memory, but
  glibc keeps it mapped: after 1,000 widget sessions a process held ~30 MB more than it
  used (bench/memory.py). One trim takes a few milliseconds on the event loop.

Everything else, every option included, is daphne's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from typing import Any

import daphne.server  # first: installs Twisted's asyncio reactor
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import reactor


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


REQUEST_SECONDS = _seconds("SUPPORT_HTTP_REQUEST_SECONDS", 60.0)
IDLE_SECONDS = _seconds("SUPPORT_HTTP_IDLE_SECONDS", 60.0)
MAX_PENDING_FRAMES = int(_seconds("SUPPORT_WS_MAX_PENDING_FRAMES", 200))
MALLOC_TRIM_SECONDS = _seconds("SUPPORT_MALLOC_TRIM_SECONDS", 60.0)
CLOSE_TOO_MANY_FRAMES = 4429  # as conversations.widget.protocol


class DeadlineRequest(WebRequest):
    """A request that must be received completely within `REQUEST_SECONDS`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Twisted's zope interfaces declare methods without `self`, which mypy (without
        # the mypy-zope plugin) reads as a shifted signature: hence the three ignores.
        self._deadline = (
            reactor.callLater(REQUEST_SECONDS, self._too_slow)  # type: ignore[arg-type]
            if REQUEST_SECONDS > 0 else None
        )

    def process(self) -> None:  # called once the whole request (headers and body) is in
        self._cancel_deadline()
        super().process()

    def connectionLost(self, reason: Any) -> None:
        self._cancel_deadline()
        super().connectionLost(reason)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():  # type: ignore[misc]
            self._deadline.cancel()  # type: ignore[misc]
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        transport = self.channel.transport if self.channel else None
        if transport is None:
            return
        transport.write(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        transport.loseConnection()


class BoundedHTTPFactory(HTTPFactory):
    def __init__(self, server: Any) -> None:
        super().__init__(server)
        self.timeOut = IDLE_SECONDS if IDLE_SECONDS > 0 else None

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = DeadlineRequest
        return protocol


class FloodClosingProtocol(WebSocketProtocol):
    flooded = False

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.flooded:
            return
        queue = getattr(self, "application_queue", None)
        if MAX_PENDING_FRAMES > 0 and queue is not None and queue.qsize() >= MAX_PENDING_FRAMES:
            self.flooded = True
            # Stop reading: the flooding client's writes then block, so even a client
            # that never paused to read gets to read the close frame (closing at once
            # would reset the connection and lose the frame: 1006). Give up after 10 s.
            self.closeHandshakeTimeout = 10
            self.sendClose(code=CLOSE_TOO_MANY_FRAMES, reason="Too many frames")
            self.transport.pauseProducing()
            return
        super().onMessage(payload, isBinary)


class ClosingWebSocketFactory(WebSocketFactory):
    protocol = FloodClosingProtocol

    def setProtocolOptions(self, **options: Any) -> None:
        # Fail a connection with a close frame (1009 for an oversized message), not a drop.
        options.setdefault("failByDrop", False)
        super().setProtocolOptions(**options)


def malloc_trim() -> Callable[[], Any] | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def schedule_malloc_trim(seconds: float = MALLOC_TRIM_SECONDS) -> Any:
    """Trim the heap every `seconds` on the reactor (daphne's loop); the LoopingCall, or
    None when off or unavailable."""
    trim = malloc_trim()
    if seconds <= 0 or trim is None:
        return None
    from twisted.internet.task import LoopingCall

    loop = LoopingCall(trim)
    loop.start(seconds, now=False)
    return loop


def main(argv: list[str] | None = None) -> None:
    daphne.server.HTTPFactory = BoundedHTTPFactory
    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    schedule_malloc_trim()
    CommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
