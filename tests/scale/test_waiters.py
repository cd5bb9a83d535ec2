"""API clients that wait for their answer (`?wait=N`, Server-Sent Events) hold no
database connection and no thread while they wait, so one process serves many more of
them than its pool has connections, and keeps serving everyone else.

Every waiter here talks to one daphne process, four times as many as its pool
(POOL_MAX_SIZE) has connections; some hang up mid-wait. Each message must be stored
once and answered, each client that stayed must get its answer, and the process must
answer its readiness probe and ordinary requests while they wait and afterwards.
tests/api/test_waiting_clients.py runs the same in embedded mode.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from django.conf import settings

from conversations.agent.events import group_name
from tests import fake_provider as fp
from tests.api.waiters import ANSWER, assert_all_answered, many_waiters, threads_of, visitor, warm_up
from tests.conftest import wait_for
from tests.scale.harness import POOL_MAX_SIZE

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAITERS = 4 * POOL_MAX_SIZE


def group_members(gone: list[Any], waiting: list[Any]) -> tuple[list[int], list[int]]:
    """How many channels are in each conversation's group, in Redis (this test process
    subscribes to none of them), once the hung-up clients' memberships are gone."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]

    def members(conversation: Any) -> int:
        return client.zcard(f"{prefix}:group:{group_name(conversation.pk)}")

    wait_for(lambda: not any(members(c) for c in gone), timeout=15)
    return [members(c) for c in gone], [members(c) for c in waiting]


def test_many_more_waiting_clients_than_pool_connections_all_get_answers(scale):
    web = scale.cluster.processes[0]
    scale.provider.responder = lambda body: fp.text("Hello.")
    warm = warm_up(web.url)
    threads_before = threads_of(web.pid)
    # Given answers that take a while (the provider keeps streaming: a stalled stream times out)
    scale.provider.responder = lambda body: fp.text(ANSWER, delta_delay=0.2)

    # When four times as many clients as the pool has connections post to one process and wait
    pubsub = "pubsub" in settings.CHANNEL_LAYERS["default"]["BACKEND"]  # keeps no group keys
    conversations, results, during = many_waiters(web.url, web.pid, WAITERS, probe=None if pubsub else group_members)

    # Then a client that hung up left its conversation's group at once, while those that
    # wait are still in theirs
    if not pubsub:
        gone, waiting = during["probe"]
        assert set(gone) == {0} and set(waiting) == {1}, during["probe"]
    # and (see assert_all_answered) nothing jammed and everyone got their answer
    assert_all_answered(conversations, results, during, threads_before=threads_before)
    # and afterwards the process is ready and serves as before
    assert httpx.get(f"{web.url}/readyz", timeout=10).status_code == 200
    polled = httpx.get(f"{web.url}/api/v1/conversations/{warm.pk}/messages", headers=visitor(warm), timeout=10)
    assert polled.status_code == 200 and [m["text"] for m in polled.json()["results"]] == ["Hi", "Hello."]
