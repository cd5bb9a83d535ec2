"""Hostile input to `import_conversations`: a line nested too deeply to parse is a bad
line reported with its number, and the rest of the run still imports."""

from __future__ import annotations

import json

import pytest

from conversations.models import Conversation
from tests.importers.conftest import run_import

pytestmark = pytest.mark.django_db


def _line(conversation: str, content: str) -> str:
    return json.dumps({"conversation_id": conversation, "customer_id": "u-1", "role": "user", "content": content})


def test_a_deeply_nested_chat_line_is_reported_and_the_run_goes_on(tmp_path, demo):
    path = tmp_path / "chats.jsonl"
    bomb = '{"conversation_id": "c-2", "role": "user", "content": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text("\n".join([_line("c-1", "Hello"), bomb, _line("c-3", "Still here")]) + "\n")

    report = run_import(str(path))

    failed = {f["line"]: f["reason"] for f in report["failed"]}
    assert list(failed) == [2]
    assert "nested" in failed[2]
    assert set(Conversation.objects.values_list("external_id", flat=True)) == {"c-1", "c-3"}


def test_a_line_nested_deep_but_parseable_is_a_bad_line_too(tmp_path, demo):
    # 900 levels parse with the C decoder, then break whatever walks them recursively.
    path = tmp_path / "chats.jsonl"
    deep = json.dumps({"conversation_id": "c-2", "role": "user", "content": "x",
                       "metadata": json.loads("[" * 900 + "]" * 900)})
    path.write_text("\n".join([_line("c-1", "Hello"), deep]) + "\n")

    report = run_import(str(path))

    assert [(f["line"], "nested" in f["reason"]) for f in report["failed"]] == [(2, True)]
    assert list(Conversation.objects.values_list("external_id", flat=True)) == ["c-1"]


def test_a_deeply_nested_assistants_export_line_is_reported(tmp_path, demo):
    path = tmp_path / "messages.jsonl"
    good = {"id": "thread_1", "object": "thread", "created_at": 1_700_000_000, "metadata": {}}
    bomb = '{"id": "msg_1", "object": "thread.message", "content": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path.write_text(json.dumps(good) + "\n" + bomb + "\n")

    report = run_import(str(path))

    assert [(f["line"], "nested" in f["reason"]) for f in report["failed"]] == [(2, True)]
