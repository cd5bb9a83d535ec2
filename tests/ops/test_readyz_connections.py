"""`/readyz` gives back the database connection its check borrowed.

The check runs on a thread of the loop's default executor; with PostgreSQL's pool,
a connection that thread kept would stay checked out until the thread's next check,
so a load balancer's probes alone held part of every process's pool."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_readyz_returns_its_connection_to_the_pool():
    pool = getattr(connection, "pool", None)
    if pool is None:
        pytest.skip("no connection pool (SQLite, or DATABASE_POOL=false)")
    in_use_before = pool.get_stats()["pool_size"] - pool.get_stats()["pool_available"]

    for _ in range(3):
        assert (await AsyncClient().get("/readyz")).status_code == 200

    stats = pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] == in_use_before, stats
