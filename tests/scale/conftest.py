"""Fixtures for the multi-process tests: a cluster of daphne processes for this package,
and per test a clean slate (every process running, the database reachable, the fake
provider's script empty, this test process writing only)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings

from conversations.agent.engine import engine
from conversations.models import Turn
from conversations.models.turn import TurnStatus
from tests.conftest import wait_for
from tests.fake_provider import FakeProvider
from tests.scale.harness import Cluster, EventRecorder, TcpProxy, cluster_env, run_release
from tests.scale_mode import scale_unavailable

pytestmark = pytest.mark.scale


@dataclass
class Scale:
    cluster: Cluster
    proxy: TcpProxy
    provider: FakeProvider
    recorder: EventRecorder
    database_name: str


# Package scope: the processes stop after the last test here, so their sweepers never
# pick up turns of tests elsewhere that run their own engine.
@pytest.fixture(scope="package")
def _cluster(django_db_setup: Any, _fake_provider_server: FakeProvider,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, TcpProxy]]:
    reason = scale_unavailable()
    if reason:
        pytest.skip(reason)
    database = settings.DATABASES["default"]
    proxy = TcpProxy(database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432))
    layer = settings.CHANNEL_LAYERS["default"]
    env = cluster_env(
        database=database, proxy=proxy, redis_url=settings.REDIS_URL,
        redis_prefix=layer["CONFIG"]["prefix"].removesuffix(":asgi"),
        provider_url=_fake_provider_server.base_url, var_dir=tmp_path_factory.mktemp("scale-var"),
        secret_key=settings.SECRET_KEY,
    )
    run_release(env)
    cluster = Cluster(env=env, log_dir=tmp_path_factory.mktemp("scale-logs"))
    try:
        cluster.start(2)
        yield cluster, proxy
    finally:
        cluster.stop()
        proxy.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_failed] = report.failed
    return report


_failed = pytest.StashKey[bool]()


@pytest.fixture
def scale(_cluster: tuple[Cluster, TcpProxy], _fake_provider_server: FakeProvider, default_agent: Any,
          monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Scale]:
    """The cluster, ready. This test process only writes (like a door whose process
    never dispatches): its engine neither runs nor sweeps turns, so every turn runs in
    a daphne process, picked up by their sweepers."""
    cluster, proxy = _cluster
    proxy.restore()
    cluster.ensure_running()
    _fake_provider_server.reset()

    async def no_sweep() -> None:
        return None

    monkeypatch.setattr(engine, "dispatch", lambda conversation_id: None)
    monkeypatch.setattr(engine, "sweep", no_sweep)
    recorder = EventRecorder()
    state = Scale(cluster=cluster, proxy=proxy, provider=_fake_provider_server, recorder=recorder,
                  database_name=settings.DATABASES["default"]["NAME"])
    try:
        yield state
        # Nothing may be left running when the tables are flushed for the next test.
        proxy.restore()
        wait_for(lambda: not Turn.objects.filter(status__in=[TurnStatus.QUEUED, TurnStatus.RUNNING]).exists(),
                 timeout=20)
    finally:
        recorder.close()
        if request.node.stash.get(_failed, True):
            print(cluster.logs())
