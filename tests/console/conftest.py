"""Console fixtures: the support groups, staff users in each role, logged-in clients,
and conversations built through the services (or in bulk, for query-count tests)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from conversations.agent.engine import Engine, engine
from conversations.permissions import AGENT, VIEWER, support_groups_sync

PASSWORD = "console-test-password"


@pytest.fixture
def groups(db: Any) -> None:
    # Transactional tests flush the database (and the groups the migration made).
    support_groups_sync()


def make_staff(username: str, *, group: str | None = None, superuser: bool = False) -> Any:
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def viewer(groups: None) -> Any:
    return make_staff("vera", group=VIEWER)


@pytest.fixture
def support_agent(groups: None) -> Any:
    return make_staff("sam", group=AGENT)


@pytest.fixture
def superuser(db: Any) -> Any:
    return make_staff("root", superuser=True)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def agent_client(support_agent: Any) -> Client:
    return logged_in(support_agent)


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    return logged_in(viewer)


@pytest.fixture
def admin_client_(superuser: Any) -> Client:
    return logged_in(superuser)


def conversation_url(conversation: Any) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/change/"


def act_url(conversation: Any, action: str) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/act/{action}/"


def turn_url(turn: Any) -> str:
    return f"/admin/conversations/turn/{turn.pk}/change/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: Any, settings: Any) -> None:
    """Staff users are created in most console tests; hashing with the production
    hasher would dominate their time. Browser tests log in through a real server that
    uses the production hashers, so they keep them."""
    if request.node.get_closest_marker("browser") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest_asyncio.fixture
async def live_engine() -> Engine:
    """Run turns and publish events on the async test's own loop (bound inside it)."""
    engine.bind()
    return engine
