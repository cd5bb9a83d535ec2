"""Origins compared as scheme + host + port, through the Procfile's daphne: a page on
another port or scheme of the platform's host is another origin (no widget session, no
staff role), and the staff role on the conversation socket is granted only to the
platform's own origin, never to an embedding site."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from conversations.access import visitor_token_issue
from conversations.services.conversations import conversation_create
from tests.security.server import web_process
from tests.security.websocket import close_code, first_event, open_socket

pytestmark = pytest.mark.django_db(transaction=True)
EMBEDDER = "https://shop.example"


@pytest.fixture
def web(demo):
    with web_process({"SUPPORT_WIDGET_ORIGINS": f"{EMBEDDER},http://*.partner.example:8080",
                      "DJANGO_PROXY_SSL_HEADER": "X-Forwarded-Proto"}) as web:
        yield web


@pytest.fixture
def staff_cookie(admin_client) -> dict[str, str]:
    return {"Cookie": f"{settings.SESSION_COOKIE_NAME}={admin_client.cookies[settings.SESSION_COOKIE_NAME].value}"}


def _session(web, origin: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{web.url}/widget/session", content=b"{}",
                      headers={"Content-Type": "application/json", "Origin": origin, **headers})


def test_widget_sessions_compare_scheme_host_and_port(web):
    own = web.url
    assert _session(web, own).status_code == 201
    assert _session(web, EMBEDDER).status_code == 201
    assert _session(web, "https://a.partner.example:8080").status_code == 403  # scheme differs
    assert _session(web, "http://a.partner.example:8080").status_code == 201
    for other in ("http://127.0.0.1:1", "https://127.0.0.1:" + str(web.port), "http://shop.example",
                  "https://shop.example:8443", "http://partner.example:8080", "null"):
        response = _session(web, other)
        assert response.status_code == 403, other
        assert response.json()["error"]["code"] == "origin_not_allowed"


async def test_a_page_on_another_port_of_the_host_gets_no_staff_role(web, staff_cookie):
    conversation = await _conversation()
    url = f"{web.ws_url}/ws/conversations/{conversation.pk}/"

    same = await open_socket(url, origin=web.url, headers=staff_cookie)
    assert (await first_event(same))["role"] == "staff"
    await same.close()
    assert await open_socket(url, origin="http://127.0.0.1:1", headers=staff_cookie) == 403


async def test_behind_a_tls_proxy_the_own_origin_is_https(web, staff_cookie):
    conversation = await _conversation()
    url = f"{web.ws_url}/ws/conversations/{conversation.pk}/"
    host = f"127.0.0.1:{web.port}"

    secure = await open_socket(url, origin=f"https://{host}", headers={**staff_cookie, "X-Forwarded-Proto": "https"})
    assert (await first_event(secure))["role"] == "staff"
    await secure.close()
    assert await open_socket(url, origin=f"http://{host}",
                             headers={**staff_cookie, "X-Forwarded-Proto": "https"}) == 403


async def test_an_embedding_site_gets_no_staff_role(web, staff_cookie):
    conversation = await _conversation()
    url = f"{web.ws_url}/ws/conversations/{conversation.pk}/"

    own = await open_socket(url, origin=web.url, headers=staff_cookie)
    assert (await first_event(own))["role"] == "staff"
    await own.close()
    # An embedding site may open the socket, but a staff session alone is not a visitor token
    embedder = await open_socket(url, origin=EMBEDDER, headers=staff_cookie)
    assert (await first_event(embedder))["code"] == "not_found"
    assert await close_code(embedder) == 4404


async def test_an_embedding_site_opens_the_customer_socket_as_the_visitor(web):
    conversation = await _conversation()
    token = await _token(conversation)
    socket = await open_socket(f"{web.ws_url}/ws/conversations/{conversation.pk}/?token={token}", origin=EMBEDDER)
    assert (await first_event(socket))["role"] == "visitor"
    await socket.close()
    assert await open_socket(f"{web.ws_url}/ws/conversations/{conversation.pk}/?token={token}",
                             origin="https://shop.example:444") == 403


async def _conversation():
    from channels.db import database_sync_to_async

    return await database_sync_to_async(conversation_create)(channel="widget")


async def _token(conversation):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(visitor_token_issue)(conversation)
