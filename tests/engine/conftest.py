"""Fixtures for the engine tests: an agent wired to the fake provider, temporary tools,
an engine that is idle again after every test, and the spec checks that run after every
test (each request recorded on a Turn, and each event the fake provider sent, must match
the official OpenAPI schemas)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conversations.agent.engine import engine
from conversations.models import Agent, Conversation, Turn
from conversations.services.conversations import conversation_create
from tests.engine.support import engine_idle
from tests.spec.openai_schema import assert_valid_event, assert_valid_request
from tools.registry import tool, unregister


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """`setup_demo` creates a staff login; hashing its password for real in every test
    costs more than the test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _engine_settles() -> Iterator[None]:
    """After a test, wait until no turn runs on the engine's background loop, so no
    engine thread writes into the next test's database. (Async tests using `bound`
    wait on their own loop.)"""
    yield
    engine_idle()


@pytest.fixture(autouse=True)
def _wire_matches_the_spec(request: pytest.FixtureRequest, _fake_provider_server: Any) -> Iterator[None]:
    """Every request a test's turns recorded, and every request and event the fake
    provider saw, validates against the vendored OpenAI schemas."""
    yield
    if not getattr(request.node, "rep_call_passed", False):
        return
    if "provider" in request.fixturenames:
        for body in list(_fake_provider_server.requests):
            assert_valid_request(body)
        for event in list(_fake_provider_server.events_sent):
            assert_valid_event(event)
    if request.node.get_closest_marker("django_db") is not None:
        for requests in Turn.objects.values_list("requests", flat=True):
            for body in requests:
                assert_valid_request(body)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call_passed = report.passed  # type: ignore[attr-defined]
    return report


@pytest.fixture
def agent(default_agent: Agent, provider: Any) -> Agent:
    """The demo agent, talking to the fake provider."""
    return default_agent


@pytest.fixture
def conversation(agent: Agent) -> Conversation:
    return conversation_create(agent=agent, channel="api")


@pytest.fixture
def lease_seconds(settings: Any) -> Callable[[float], None]:
    def set_lease(seconds: float) -> None:
        settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "TURN_LEASE_SECONDS": seconds}

    return set_lease


@pytest.fixture
def register_tool(default_agent: Agent) -> Iterator[Callable[..., Callable[..., Any]]]:
    """Register a temporary tool and enable it on the default agent:
    `register_tool(fn, timeout=...)`. Released at teardown."""
    names: list[str] = []

    def register(fn: Callable[..., Any], **options: Any) -> Callable[..., Any]:
        tool(**options)(fn)
        name = options.get("name", fn.__name__)
        names.append(name)
        default_agent.tools = [*default_agent.tools, name]
        default_agent.save(update_fields=["tools"])
        return fn

    yield register
    for name in names:
        unregister(name)


@pytest.fixture
def gates() -> Iterator[Callable[[], threading.Event]]:
    """Events that block tools or streams; all are opened at teardown so no thread
    stays blocked after its test."""
    made: list[threading.Event] = []

    def new() -> threading.Event:
        made.append(threading.Event())
        return made[-1]

    yield new
    for gate in made:
        gate.set()


@pytest.fixture
async def bound() -> Any:
    """The engine running turns on this async test's own loop; idle again at teardown."""
    engine.bind()
    yield engine
    await engine.wait_idle(20)
