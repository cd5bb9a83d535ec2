"""Fixtures for the importer tests: the fake Assistants API, running the command, and
snapshots of what an import left in the database."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command

from conversations.models import Conversation
from tests.importers.fake_assistants import FakeAssistantsApi

API_KEY = "test-assistants-key"


@pytest.fixture(scope="session")
def _assistants_server() -> Iterator[FakeAssistantsApi]:
    server = FakeAssistantsApi()
    yield server
    server.close()


@pytest.fixture
def assistants_api(_assistants_server: FakeAssistantsApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAssistantsApi]:
    _assistants_server.reset()
    monkeypatch.setenv("ASSISTANTS_KEY", API_KEY)
    yield _assistants_server
    _assistants_server.release.set()


def run_import(*args: str) -> dict[str, Any]:
    """Run `import_conversations` in-process and return its JSON report."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_conversations", *args, "--no-progress", stdout=out, stderr=err)
    return json.loads(out.getvalue())


def api_args(api: FakeAssistantsApi, mapping: Any, *extra: str) -> list[str]:
    return [
        "--api-base-url", api.base_url, "--api-key-env", "ASSISTANTS_KEY", "--mapping", str(mapping),
        "--max-retries", "3", "--timeout", "10", *extra,
    ]


def snapshot() -> dict[str, Any]:
    """Everything an import decides, without ids and import-time clocks."""
    state: dict[str, Any] = {}
    for conversation in Conversation.objects.filter(channel="imported").select_related("agent"):
        state[conversation.external_id] = {
            "agent": conversation.agent.name,
            "customer": (conversation.customer_kind, conversation.customer_id, conversation.customer_email),
            "status": conversation.status,
            "metadata": {k: v for k, v in conversation.metadata.items() if k != "imported_from"},
            "created_at": conversation.created_at,
            "message_count": conversation.message_count,
            "next_seq": conversation.next_seq,
            "items": list(
                conversation.messages.order_by("seq").values_list(
                    "seq", "kind", "text", "tool_name", "call_id", "tool_arguments", "external_id",
                    "created_at", "token_count",
                )
            ),
        }
    return state


