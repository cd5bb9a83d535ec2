"""A crash midway leaves whole conversations only, and a re-run ends in the same state
as one clean run. The importer runs as a real process and is killed with SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings

from conversations.importers.models import ImportedConversation
from conversations.models import Conversation
from tests.conftest import wait_for
from tests.importers import fake_assistants as fa
from tests.importers.conftest import API_KEY, api_args, run_import, snapshot
from tests.shared_database import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _start_import(*args: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "SUPPORT_SKIP_DOTENV": "1", "ASSISTANTS_KEY": API_KEY}
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_conversations", *args, "--no-progress"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def _kill(process: subprocess.Popen) -> None:
    process.kill()
    process.wait(timeout=30)
    process.stderr.close()


def _imported() -> int:
    return Conversation.objects.filter(channel="imported").count()


def _forget_imports() -> None:
    Conversation.objects.filter(channel="imported").delete()
    assert not ImportedConversation.objects.exists()


def test_an_api_import_killed_midway_resumes_to_the_same_state(assistants_api, tmp_path, default_agent):
    for i in range(8):
        assistants_api.add_thread(fa.thread(f"thread_{i}", created_at=1_700_000_000 + i), messages=[
            fa.message(f"msg_{i}_{n}", f"thread_{i}", "user" if n % 2 == 0 else "assistant",
                       [fa.text(f"thread {i} message {n}")], created_at=1_700_000_000 + i * 100 + n)
            for n in range(30)
        ])
    mapping = tmp_path / "customers.csv"
    mapping.write_text("".join(f"cust-{i},thread_{i}\n" for i in range(8)))
    # With one fetch at a time, thread_4 is asked for only once threads 0-3 are written.
    assistants_api.hang("/threads/thread_4/messages")

    process = _start_import(*api_args(assistants_api, mapping, "--concurrency", "1"))
    try:
        wait_for(lambda: assistants_api.seen("/threads/thread_4/messages"), timeout=60)
        wait_for(lambda: _imported() == 4, timeout=30)
    finally:
        _kill(process)
    assert _imported() == 4
    assistants_api.hang_paths.clear()
    assistants_api.release.set()

    run_import(*api_args(assistants_api, mapping))
    resumed = snapshot()
    _forget_imports()
    run_import(*api_args(assistants_api, mapping))

    assert len(resumed) == 8
    assert resumed == snapshot()


def test_a_file_import_killed_midway_leaves_whole_conversations_and_resumes(tmp_path, default_agent):
    path = tmp_path / "histories.jsonl"
    with path.open("w") as handle:
        for c in range(200):
            for n in range(8):
                handle.write(json.dumps({
                    "conversation_id": f"conv-{c}", "customer_id": f"cust-{c}",
                    "role": "user" if n % 2 == 0 else "assistant",
                    "content": f"conversation {c} says {n}", "created_at": 1_700_000_000 + c * 60 + n,
                }) + "\n")

    process = _start_import(str(path))
    try:
        wait_for(lambda: _imported() > 0, timeout=60, interval=0.005)
    finally:
        _kill(process)
    partial = _imported()
    assert 0 < partial < 200, "the import was not interrupted midway"
    # Whole conversations only: every one that exists has all of its eight items.
    counts = set(Conversation.objects.filter(channel="imported").values_list("message_count", "next_seq"))
    assert counts == {(8, 9)}
    assert all(
        c.messages.count() == 8 for c in Conversation.objects.filter(channel="imported")
    )

    report = run_import(str(path))
    assert report["summary"]["conversations_created"] == 200 - partial
    resumed = snapshot()
    _forget_imports()
    run_import(str(path))

    assert len(resumed) == 200
    assert resumed == snapshot()


def test_parallel_writers_end_in_the_same_state_as_one(tmp_path, default_agent):
    path = tmp_path / "histories.jsonl"
    with path.open("w") as handle:
        for c in range(40):
            for n in range(6):
                handle.write(json.dumps({
                    "conversation_id": f"conv-{c}", "customer_id": f"cust-{c}",
                    "role": "user" if n % 2 == 0 else "assistant", "content": f"conversation {c} says {n}",
                    "created_at": 1_700_000_000 + c * 60 + n,
                }) + "\n")

    parallel = run_import(str(path), "--writers", "3")
    state = snapshot()
    _forget_imports()
    run_import(str(path), "--writers", "1")

    assert parallel["summary"]["conversations_created"] == 40 and not parallel["failed"]
    assert state == snapshot()
