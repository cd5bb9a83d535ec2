"""Shared fixtures: the scripted fake provider, agents, demo orders, engine helpers."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from conversations.agent.engine import engine
from tests.fake_provider import FakeProvider

pytest_plugins = ["tests.scale_mode", "tests.browser"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any) -> Iterator[None]:
    """pytest-django's, plus: this process's engine stops sweeping before the test
    database is dropped (a sweep racing the drop would hold a connection to it)."""
    yield

    async def no_sweep() -> None:
        return None

    engine.sweep = no_sweep  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _history_embedding_thread_off(settings: Any) -> None:
    """Semantic history retrieval is on by default (`HISTORY_EMBEDDINGS=offline`), and
    its background thread would embed every committed item of every transactional test
    while the next test writes. Tests turn the thread off; the embeddings stay on (a
    conversation without stored vectors selects exactly as full text does), and the
    default path, thread included, has its own tests (tests/engine/test_history_embeddings.py,
    and every daphne subprocess, which runs with the defaults)."""
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "HISTORY_EMBED_BACKGROUND": False}


@pytest.fixture(scope="session")
def _fake_provider_server() -> Iterator[FakeProvider]:
    server = FakeProvider()
    yield server
    server.close()


@pytest.fixture
def provider(_fake_provider_server: FakeProvider, settings: Any) -> FakeProvider:
    """Point the platform at the fake provider (a configured key, so not offline)."""
    _fake_provider_server.reset()
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM,
        "PROVIDER_API_KEY": "test-key",
        "PROVIDER_BASE_URL": _fake_provider_server.base_url,
        "PROVIDER_TIMEOUT_SECONDS": 3.0,
        "PROVIDER_MAX_RETRIES": 1,
        "DEFAULT_MODEL": "gpt-4.1-mini",
        "OFFLINE_MODEL_WORD_DELAY": 0.0,
    }
    return _fake_provider_server


@pytest.fixture
def offline(settings: Any) -> None:
    """Use the built-in offline model, without pacing delays."""
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM,
        "PROVIDER_API_KEY": "",
        "OFFLINE_MODEL_WORD_DELAY": 0.0,
    }


@pytest.fixture
def demo(db: Any) -> None:
    """The default agent and demo orders, as `setup_demo` creates them."""
    call_command("setup_demo", stdout=io.StringIO())


@pytest.fixture
def default_agent(demo: None) -> Any:
    from conversations.models import Agent

    return Agent.objects.get(is_default=True)


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy (observable state, never elapsed time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


async def await_for(predicate: Any, timeout: float = 15.0, interval: float = 0.02) -> Any:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def wait_turn_finished(turn_id: Any, timeout: float = 15.0) -> Any:
    from conversations.models import Turn

    return wait_for(
        lambda: (t := Turn.objects.get(pk=turn_id)).is_finished and t, timeout=timeout
    )


@pytest.fixture
def bound_engine() -> Any:
    """Run turns on the test's own event loop (async tests)."""
    engine.bind()
    return engine
