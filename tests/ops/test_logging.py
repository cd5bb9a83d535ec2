"""Structured logs: JSON lines carrying request, conversation and turn ids, and no
message text or secrets at info level."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from conversations.ops.logcontext import ContextFilter, JsonFormatter
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_for, wait_turn_finished
from tests.fake_provider import calls, text
from tools.registry import ToolContext, tool, unregister

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every INFO+ line, formatted as the JSON console handler formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_request_id_is_kept_or_made_and_logged(json_log):
    client = Client()
    kept = client.get("/no-such-page", headers={"X-Request-ID": "edge-abc.123"})
    assert kept.status_code == 404 and kept["X-Request-ID"] == "edge-abc.123"
    made = client.get("/no-such-page", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made["X-Request-ID"]) == 32 and " " not in made["X-Request-ID"]
    access = [line for line in lines(json_log) if line["logger"] == "support.request"]
    assert [line["request_id"] for line in access] == ["edge-abc.123", made["X-Request-ID"]]
    assert access[0]["status"] == 404 and access[0]["path"] == "/no-such-page"


@pytest.mark.django_db
def test_access_log_never_carries_the_query_string(json_log):
    Client().get("/no-such-page?token=visitor-secret")
    assert "visitor-secret" not in json_log.getvalue()


@pytest.mark.django_db(transaction=True)
def test_turn_logs_carry_conversation_and_turn_ids_but_no_text(default_agent, provider, json_log):
    @tool(name="ops_log_probe")
    def ops_log_probe(context: ToolContext, topic: str) -> str:
        """Probe tool that logs from inside a turn.

        Args:
            topic: Anything.
        """
        logging.getLogger("tests.probe").info("probe ran")
        return "done"

    try:
        default_agent.tools = [*default_agent.tools, "ops_log_probe"]
        default_agent.save()
        conversation = conversation_create(channel="widget")
        provider.queue(calls(("ops_log_probe", {"topic": "x"})), text("Private answer words"))
        posted = message_post(conversation=conversation, text="my secret phrase zebra-kumquat")
        turn = wait_turn_finished(posted.turn.id)
        assert turn.status == "completed"
        wait_for(lambda: any(line["message"].startswith(f"turn {turn.id}") for line in lines(json_log)))
    finally:
        unregister("ops_log_probe")

    logged = lines(json_log)
    probe = next(line for line in logged if line["logger"] == "tests.probe")
    assert probe["conversation_id"] == str(conversation.pk) and probe["turn_id"] == str(turn.id)
    finished = next(line for line in logged if line["message"] == f"turn {turn.id} completed")
    assert finished["conversation_id"] == str(conversation.pk)
    assert finished["latency_ms"] == turn.latency_ms and finished["status"] == "completed"
    everything = json_log.getvalue()
    for secret in ("zebra-kumquat", "Private answer words", "test-key"):
        assert secret not in everything


def test_log_format_json_switches_the_console_handler(tmp_path):
    probe = "import django, logging; django.setup(); logging.getLogger('x').warning('hello %s', 'there')"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "support.settings",
        "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(tmp_path),
        "LOG_FORMAT": "json",
    }
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello there" and line["level"] == "WARNING" and line["logger"] == "x"
