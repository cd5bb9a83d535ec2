"""Resource limits through the Procfile's daphne: sockets per visitor and per address,
slow-header and slow-body clients, oversized frames and frame floods, each ending with
the documented answer (408, close codes 1009 and 4429) instead of holding the server or
dropping the connection with no code."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
from channels.db import database_sync_to_async

from conversations.access import visitor_token_issue
from conversations.services.conversations import conversation_create
from tests.security.server import web_process
from tests.security.websocket import close_code, first_event, open_socket

pytestmark = pytest.mark.django_db(transaction=True)
GIVE_UP_SECONDS = 40  # only to fail a test whose server never answers


@pytest.fixture
def web(demo):
    with web_process({"SUPPORT_WS_MAX_PER_VISITOR": "3", "SUPPORT_WS_MAX_PER_ADDRESS": "5",
                      "SUPPORT_HTTP_REQUEST_SECONDS": "2", "SUPPORT_HTTP_IDLE_SECONDS": "2",
                      "SUPPORT_NUM_PROXIES": "1"}) as web:
        yield web


async def _visitor_url(web) -> str:
    conversation = await database_sync_to_async(conversation_create)(channel="widget")
    token = await database_sync_to_async(visitor_token_issue)(conversation)
    return f"{web.ws_url}/ws/conversations/{conversation.pk}/?token={token}"


async def test_one_visitor_holds_at_most_its_share_of_sockets(web):
    url = await _visitor_url(web)
    sockets = [await open_socket(url, origin=web.url) for _ in range(3)]
    for s in sockets:
        assert (await first_event(s))["type"] == "ready"

    extra = await open_socket(url, origin=web.url)
    assert (await first_event(extra))["code"] == "too_many_sockets"
    assert await close_code(extra) == 4429

    await sockets[0].close()
    await sockets[0].wait_closed()
    again = await _eventually_ready(url, web)
    assert again["type"] == "ready"


async def test_one_address_holds_at_most_its_share_of_sockets(web):
    address = {"X-Forwarded-For": "198.51.100.7"}
    opened = []
    for _ in range(5):
        s = await open_socket(await _visitor_url(web), origin=web.url, headers=address)
        assert (await first_event(s))["type"] == "ready"
        opened.append(s)

    extra = await open_socket(await _visitor_url(web), origin=web.url, headers=address)
    assert await close_code(extra) == 4429
    other = await open_socket(await _visitor_url(web), origin=web.url, headers={"X-Forwarded-For": "198.51.100.8"})
    assert (await first_event(other))["type"] == "ready"


async def _eventually_ready(url, web):
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        s = await open_socket(url, origin=web.url)
        event = await first_event(s)
        if isinstance(event, dict) and event.get("type") == "ready":
            return event
        await asyncio.sleep(0.1)
    raise AssertionError("the released slot was never reused")


def _trickle(web, first: bytes, drip: bytes) -> bytes:
    """Send `first`, then `drip` every 0.3 s, until the server answers or closes."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=1) as conn:
        conn.sendall(first)
        deadline = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < deadline:
            try:
                data = conn.recv(4096)
                return data or b"closed"
            except TimeoutError:
                pass
            try:
                conn.sendall(drip)
            except (BrokenPipeError, ConnectionResetError):
                return b"closed"
    return b""


def test_a_slow_header_client_is_cut_off(web):
    answer = _trickle(web, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1\r\n")

    assert answer.startswith(b"HTTP/1.1 408") or answer == b"closed", answer


def test_a_slow_body_client_is_cut_off(web):
    head = (b"POST /widget/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4000\r\n\r\n{")
    answer = _trickle(web, head, b" ")

    assert answer.startswith(b"HTTP/1.1 408") or answer == b"closed", answer


def test_an_idle_connection_is_closed(web):
    with socket.create_connection(("127.0.0.1", web.port), timeout=GIVE_UP_SECONDS) as conn:
        assert conn.recv(4096) == b""


async def test_a_frame_over_the_size_limit_closes_with_1009(web):
    s = await open_socket(await _visitor_url(web), origin=web.url, max_size=None)
    assert (await first_event(s))["type"] == "ready"

    try:
        await s.send("x" * 10_000_000)
    except Exception:  # the server may close while the frame is still being written
        pass
    assert await close_code(s) == 1009


async def test_a_frame_flood_closes_with_4429(web):
    s = await open_socket(await _visitor_url(web), origin=web.url, max_size=None)
    assert (await first_event(s))["type"] == "ready"

    async def flood() -> None:
        frame = json.dumps({"type": "typing"})
        try:
            while True:
                await s.send(frame)  # never pauses to read unless its writes block
        except Exception:
            return

    sender = asyncio.create_task(flood())
    assert await close_code(s) == 4429
    await sender
