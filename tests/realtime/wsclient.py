"""A small websocket test client over channels' `WebsocketCommunicator`, against the
project's real ASGI application (origin check, session auth, routing)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from channels.testing import WebsocketCommunicator

from support.asgi import application

OWN_ORIGIN = b"http://testserver"


class WsClient:
    # Every client of the running test, so a fixture can end them all as daphne would.
    opened: list[WsClient] = []

    def __init__(self, path: str, *, origin: bytes | None = OWN_ORIGIN, cookie: str = "") -> None:
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin))
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        self.comm = WebsocketCommunicator(application, path, headers=headers)
        self.events: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self.started = self.finished = False
        WsClient.opened.append(self)

    async def connect(self) -> bool:
        self.started = True
        connected, _ = await self.comm.connect(timeout=10)
        return connected

    async def send(self, frame: Any) -> None:
        await self.comm.send_to(text_data=frame if isinstance(frame, str) else json.dumps(frame))

    async def next_output(self, within: float) -> dict[str, Any] | None:
        """The next event, or None once the server closed the socket. A timeout here
        stops the application (the communicator's rule): use it only to fail."""
        if self.close_code is not None:
            return None
        output = await self.comm.receive_output(within)
        if output["type"] == "websocket.close":
            self.close_code = output.get("code", 1000)
            return None
        event = json.loads(output["text"])
        self.events.append(event)
        return event

    async def until(self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0) -> dict[str, Any]:
        """Read events until one matches; fails if the socket closes or time runs out."""
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                event = await self.next_output(remaining)
            except TimeoutError:
                raise AssertionError(f"no matching event; got {[e.get('type') for e in self.events]}")
            if event is None:
                raise AssertionError(f"socket closed with {self.close_code}")
            if predicate(event):
                return event

    async def closed(self, within: float = 10.0) -> int:
        """Read until the server closes; returns the close code."""
        deadline = time.monotonic() + within
        while self.close_code is None:
            await self.next_output(max(0.01, deadline - time.monotonic()))
        return self.close_code

    async def quiet(self, seconds: float = 0.2) -> list[dict[str, Any]]:
        """Whatever arrives until `seconds` pass with nothing sent (the communicator's
        `receive_nothing`, which, unlike a timed-out receive, leaves the app running)."""
        got = []
        while self.close_code is None and not await self.comm.receive_nothing(seconds):
            event = await self.next_output(1)
            if event is not None:
                got.append(event)
        return got

    async def close(self) -> None:
        """End the connection the way daphne does: `websocket.disconnect` reaches the
        consumer even after the server closed the socket, and the consumer finishes."""
        if self.started and not self.finished and not self.comm.future.done():
            self.finished = True
            await self.comm.disconnect(timeout=10)


def of_type(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e.get("type") == kind and all(e.get(k) == v for k, v in fields.items())
