"""Waiting API clients in embedded mode (one daphne process, SQLite or, under
`make test-scale`, PostgreSQL with a pool of 4): many `?wait=` and SSE clients at once,
some hanging up, hold no thread each; every message is answered once, every client
that stayed gets its answer, and the process keeps answering its probe and ordinary
requests. tests/scale/test_waiters.py runs the same against the scale cluster."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import fake_provider as fp
from tests.api.waiters import ANSWER, assert_all_answered, many_waiters, threads_of, visitor, warm_up

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

WAITERS = 16


@pytest.fixture
def server(django_db_setup: Any, _fake_provider_server: Any, default_agent: Any) -> Any:
    from tests.api.live_server import DaphneServer

    _fake_provider_server.reset()
    server = DaphneServer({
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": _fake_provider_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT_SECONDS": "5",
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini",
        "DATABASE_POOL_MAX_SIZE": "4",
        "DATABASE_POOL_TIMEOUT": "2",
        "SUPPORT_DB_THREADS": "4",
    })
    yield server
    server.close()


def test_many_waiting_clients_hold_no_thread_and_all_get_answers(server, _fake_provider_server):
    _fake_provider_server.responder = lambda body: fp.text("Hello.")
    warm = warm_up(server.url)
    threads_before = threads_of(server.process.pid)
    _fake_provider_server.responder = lambda body: fp.text(ANSWER, delta_delay=0.2)

    conversations, results, during = many_waiters(server.url, server.process.pid, WAITERS)

    assert_all_answered(conversations, results, during, threads_before=threads_before)
    polled = httpx.get(f"{server.url}/api/v1/conversations/{warm.pk}/messages", headers=visitor(warm), timeout=10)
    assert polled.status_code == 200 and [m["text"] for m in polled.json()["results"]] == ["Hi", "Hello."]
