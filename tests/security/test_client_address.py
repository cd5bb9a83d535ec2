"""Client addresses behind a proxy, through the real daphne the Procfile runs: only the
`X-Forwarded-For` entries the trusted proxies added are believed, so a client cannot
read `/metrics` as loopback or dodge a per-address limit by forging the header."""

from __future__ import annotations

import httpx
import pytest

from tests.security.server import web_process

pytestmark = pytest.mark.django_db(transaction=True)

# What nginx sends when it appends ($proxy_add_x_forwarded_for) to a forged header: the
# client's own claim first, then the address nginx really saw.
REAL = "203.0.113.9"


@pytest.fixture
def behind_one_proxy(demo):
    with web_process({"SUPPORT_NUM_PROXIES": "1", "SUPPORT_WIDGET_SESSION_RATE": "2/hour"}) as web:
        yield web


def test_a_forged_loopback_entry_does_not_open_metrics(behind_one_proxy):
    forged = httpx.get(f"{behind_one_proxy.url}/metrics", headers={"X-Forwarded-For": f"127.0.0.1, {REAL}"})
    direct = httpx.get(f"{behind_one_proxy.url}/metrics", headers={"X-Forwarded-For": "127.0.0.1"})

    assert forged.status_code == 403
    # A proxy that overwrites the header with the loopback peer (a scraper on the same
    # host going through the proxy) is still let in.
    assert direct.status_code == 200


def test_rotating_forged_entries_does_not_escape_the_new_conversation_limit(behind_one_proxy):
    statuses = []
    for n in range(3):
        response = httpx.post(
            f"{behind_one_proxy.url}/widget/session", content=b"{}",
            headers={"Content-Type": "application/json", "X-Forwarded-For": f"198.51.100.{n}, {REAL}"},
        )
        statuses.append(response.status_code)

    assert statuses == [201, 201, 429]
    other = httpx.post(f"{behind_one_proxy.url}/widget/session", content=b"{}",
                       headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.10"})
    assert other.status_code == 201


def test_without_trusted_proxies_the_header_is_ignored(demo):
    with web_process({"SUPPORT_METRICS_ALLOWED_IPS": "203.0.113.0/24"}) as web:
        response = httpx.get(f"{web.url}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})

    assert response.status_code == 403


def test_the_access_log_names_the_client_address(behind_one_proxy):
    httpx.get(f"{behind_one_proxy.url}/api/v1/nowhere", headers={"X-Forwarded-For": f"10.9.9.9, {REAL}"})

    assert f"{REAL} GET /api/v1/nowhere 404" in behind_one_proxy.log_tail()


def test_rotating_forged_entries_does_not_escape_the_api_anonymous_limit(demo):
    with web_process({"SUPPORT_NUM_PROXIES": "1", "SUPPORT_API_RATE_ANONYMOUS": "2/hour"}) as web:
        statuses = [
            httpx.post(f"{web.url}/api/v1/conversations", json={},
                       headers={"X-Forwarded-For": f"198.51.100.{n}, {REAL}"}).status_code
            for n in range(3)
        ]

    assert statuses == [201, 201, 429]
