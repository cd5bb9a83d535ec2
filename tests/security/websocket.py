"""Opening real websockets (the `websockets` client) to the test's daphne process."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def open_socket(url: str, *, origin: str | None, headers: dict[str, str] | None = None,
                      **kwargs: Any) -> ClientConnection | int:
    """The open connection, or the HTTP status daphne refused the handshake with."""
    try:
        return await connect(url, origin=origin, additional_headers=headers or {}, open_timeout=15,
                             ping_interval=None, **kwargs)
    except InvalidStatus as exc:
        return exc.response.status_code


async def first_event(socket: ClientConnection) -> dict[str, Any] | int:
    """The first event the server sends, or the close code if it closes instead."""
    try:
        return json.loads(await socket.recv())
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006


async def close_code(socket: ClientConnection) -> int:
    """Read until the server closes; the code it closed with (1006 without one)."""
    try:
        while True:
            await socket.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else 1006
