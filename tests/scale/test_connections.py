"""Database connections under async: each daphne process borrows from its own pool, so
however many turns, tool calls and requests run, a process never holds more than
DATABASE_POOL_MAX_SIZE connections, and none is left inside an open transaction."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conversations.models import Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests import fake_provider as fp
from tests.conftest import wait_for, wait_turn_finished
from tests.scale.harness import POOL_MAX_SIZE, pg_connections

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def order_agent(body: dict[str, Any]) -> fp.Step:
    """Looks orders up with as many parallel tool calls as the process has tool threads
    (each tool queries the database), then answers."""
    if any(item.get("type") == "function_call_output" for item in body["input"]):
        return fp.text("Your orders are on their way.", delay=0.05)
    lookup = ("lookup_order", {"order_number": "1001", "email": "ada@example.com"})
    return fp.calls(*[lookup] * POOL_MAX_SIZE, delay=0.05)


class Sampler:
    """Samples pg_stat_activity while a burst runs: the most connections each process
    held at once."""

    def __init__(self, database_name: str) -> None:
        self.database_name = database_name
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(0.05):
                self.sample()
        finally:
            connection.close()

    def sample(self) -> dict[str, dict[str, int]]:
        counts = pg_connections(self.database_name)
        for app, states in counts.items():
            if app.startswith("support-web"):
                self.peak[app] = max(self.peak.get(app, 0), sum(states.values()))
        return counts

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def burst(size: int) -> list[Any]:
    posted = []
    for _ in range(size):
        conversation = conversation_create(channel="api", customer_email="ada@example.com")
        posted.append(message_post(conversation=conversation, text="Where is order 1001?"))
    return [wait_turn_finished(p.turn.id, timeout=60) for p in posted]


def test_each_process_stays_within_its_connection_budget_and_leaks_nothing(scale):
    scale.provider.responder = order_agent
    for round_ in (1, 2):
        # When a burst of turns, each running a database-backed tool, goes through
        with Sampler(scale.database_name) as sampler:
            turns = burst(12)
        # Then every turn completed through the tool
        assert [t.status for t in turns] == ["completed"] * 12, {t.error_code for t in turns}
        assert Message.objects.filter(kind="function_output", turn__in=turns).count() == 12 * POOL_MAX_SIZE
        # and no process ever held more connections than its pool allows, in the first
        # burst or the second (a leak would grow with the turns run)
        assert set(sampler.peak) == {"support-web1", "support-web2"}, (round_, sampler.peak)
        assert max(sampler.peak.values()) <= POOL_MAX_SIZE, (round_, sampler.peak)
        # and once the work is done no connection stays inside a transaction (a moment
        # "idle in transaction" mid-work is normal; one that never ends is a leak)
        wait_for(lambda: not any(states.get("idle in transaction") for app, states in
                                 pg_connections(scale.database_name).items() if app.startswith("support-web")),
                 timeout=10)
