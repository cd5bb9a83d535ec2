"""A request that finds the database unreachable gets a clear 503 (JSON for API
clients, a page for people) with Retry-After, never a 500; the next request after the
database returns succeeds. Runs in either mode: the database is made unreachable by
pointing this process's connection somewhere nothing answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def database_unreachable() -> Iterator[None]:
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-dir/unreachable.sqlite3"
    else:  # a closed loopback port, no pool: connection refused, at once
        connection.close_pool()
        connection.settings_dict.update(HOST="127.0.0.1", PORT=1, OPTIONS={})
    try:
        yield
    finally:
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.fixture
def staff_client(admin_user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


PAGE = "/admin/conversations/conversation/"


def test_database_outage_answers_503_json_for_api_clients(staff_client):
    with database_unreachable():
        response = staff_client.get(PAGE, headers={"accept": "application/json"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert staff_client.get(PAGE).status_code == 200  # back by itself


def test_database_outage_answers_503_page_for_people(staff_client):
    with database_unreachable():
        response = staff_client.get(PAGE)
    assert response.status_code == 503
    assert response["content-type"].startswith("text/html")
    assert b"Service unavailable" in response.content

