"""Fixtures for the REST API tests: callers of every kind and the generated schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from conversations.access import visitor_token_issue
from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, Scope
from conversations.api.services import api_conversation_create
from conversations.services.conversations import conversation_create


@dataclass
class Caller:
    """An API client with one identity; `client` is a DRF test client carrying it."""

    name: str
    client: APIClient
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, data: Any = None, **extra: Any) -> Any:
        kwargs: dict[str, Any] = {**self.headers, **extra}
        if data is not None:
            kwargs.setdefault("format", "json")
        return getattr(self.client, method.lower())(path, data, **kwargs)


def key_caller(client_name: str = "acme", scopes: list[str] | None = None, name: str = "key") -> Caller:
    client, _ = ApiClient.objects.get_or_create(name=client_name)
    _key, raw = api_key_create(
        client=client, name=name, scopes=scopes or [Scope.READ, Scope.WRITE]
    )
    return Caller(name, APIClient(), {"HTTP_AUTHORIZATION": f"Bearer {raw}"})


def visitor_caller(conversation: Any, name: str = "visitor") -> Caller:
    return Caller(name, APIClient(), {"HTTP_AUTHORIZATION": f"Visitor {visitor_token_issue(conversation)}"})


def staff_caller(name: str = "staff", *, superuser: bool = True, csrf: bool = False) -> Caller:
    User = get_user_model()
    # No password: hashing one costs most of a test's time, and force_login needs none.
    user = User.objects.create(username=name, email=f"{name}@example.com", is_staff=True, is_superuser=superuser)
    client = APIClient(enforce_csrf_checks=csrf)
    client.force_login(user)
    return Caller(name, client)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Staff logins in these tests need no real password strength, only speed."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limit counters live in the cache; each test starts with full allowances."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def api_key(default_agent: Any) -> Caller:
    """An API key (read, write) of the integration 'acme'."""
    return key_caller("acme", name="api_key")


@pytest.fixture
def world(default_agent: Any) -> dict[str, Any]:
    """Two visitors' conversations (A created by acme's key, B anonymous), an acme key,
    a key of another integration, an audit key, a read-only key, staff, and anonymous."""
    from conversations.api.models import ApiKey

    acme = key_caller("acme", name="acme")
    acme_key = ApiKey.objects.get(name="acme")
    conv_a = api_conversation_create(key=acme_key, customer_id="user-a", customer_kind="user", channel="api")
    conv_b = conversation_create(channel="widget")
    return {
        "a": conv_a,
        "b": conv_b,
        "callers": {
            "anonymous": Caller("anonymous", APIClient()),
            "visitor_a": visitor_caller(conv_a, "visitor_a"),
            "visitor_b": visitor_caller(conv_b, "visitor_b"),
            "acme_key": acme,
            "other_key": key_caller("globex", name="other_key"),
            "readonly_key": key_caller("acme", [Scope.READ], name="readonly_key"),
            "audit_key": key_caller("acme", [Scope.READ, Scope.WRITE, Scope.AUDIT], name="audit_key"),
            "staff": staff_caller(),
        },
    }


@pytest.fixture(scope="module")
def provider_server(django_db_setup: Any, _fake_provider_server: Any) -> Any:
    """daphne serving the project, its turns answered by the scripted fake provider."""
    from tests.api.live_server import DaphneServer

    server = DaphneServer({
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": _fake_provider_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT_SECONDS": "5",
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini",
    })
    yield server
    server.close()


@pytest.fixture(scope="module")
def offline_server(django_db_setup: Any) -> Any:
    """daphne serving the project with the built-in offline model (paced like in production)."""
    from tests.api.live_server import DaphneServer

    server = DaphneServer({"SUPPORT_OFFLINE_WORD_DELAY": "0.03"})
    yield server
    server.close()


@pytest.fixture
def live_key(default_agent: Any) -> str:
    """A committed API key (read, write, audit) for a live server."""
    client, _ = ApiClient.objects.get_or_create(name="live")
    _key, raw = api_key_create(client=client, name="live", scopes=[Scope.READ, Scope.WRITE, Scope.AUDIT])
    return raw
