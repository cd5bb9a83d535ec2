"""/metrics: counters and histograms move as real turns complete or fail, the queue gauge
reads the database, access is limited, and several processes add up."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from conversations.models import Conversation, Turn
from conversations.ops import metrics
from conversations.ops.models import ToolCallFact, TurnFact
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.conftest import wait_for, wait_turn_finished
from tests.fake_provider import calls, failed, text
from tests.ops.helpers import delta, parse_exposition, scrape, value

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_metrics_move_as_turns_complete_and_fail(default_agent, provider):
    client = Client()
    before = scrape(client)
    agent, model = default_agent.name, "gpt-4.1-mini"
    conversation = conversation_create(channel="widget", customer_id="ada@example.com")

    # One turn that calls a tool and answers, one that the provider fails.
    provider.queue(
        calls(("lookup_order", {"order_number": "1001", "email": "ada@example.com"})),
        text("Order 1001 has shipped."),
        failed(code="server_error", message="The model failed."),
    )
    answered = wait_turn_finished(message_post(conversation=conversation, text="Where is 1001?").turn.id)
    broken = wait_turn_finished(message_post(conversation=conversation, text="And 1002?").turn.id)
    assert (answered.status, broken.status) == ("completed", "failed")
    assert broken.error_code == "response_failed"

    def moved():
        after = scrape(client)
        done = delta(before, after, "support_turns_finished_total", agent=agent, model=model, status="failed", error="response_failed")
        return after if done == 1 else None

    after = wait_for(moved)
    assert delta(before, after, "support_turns_finished_total", agent=agent, model=model, status="completed", error="") == 1
    assert delta(before, after, "support_provider_errors_total", kind="response_failed") == 1
    assert delta(before, after, "support_tool_calls_total", tool="lookup_order", outcome="ok") == 1
    assert delta(before, after, "support_tool_duration_seconds_count", tool="lookup_order") == 1
    assert delta(before, after, "support_turn_latency_seconds_count", agent=agent, status="completed") == 1
    assert delta(before, after, "support_turn_latency_seconds_count", agent=agent, status="failed") == 1
    assert delta(before, after, "support_turn_time_to_first_token_seconds_count", agent=agent) == 1

    turns = Turn.objects.filter(conversation=conversation)
    for kind in ("input", "output", "cached", "reasoning"):
        expected = sum(getattr(t, f"{kind}_tokens") for t in turns)
        assert delta(before, after, "support_tokens_total", agent=agent, model=model, kind=kind) == expected
    expected_cost = sum((t.cost for t in turns), Decimal("0"))
    assert expected_cost > 0
    assert delta(before, after, "support_cost_usd_total", agent=agent, model=model) == pytest.approx(float(expected_cost))

    # The dashboard's read model was written in the same transactions.
    facts = {f.turn_id: f for f in TurnFact.objects.filter(conversation=conversation)}
    assert facts[answered.id].status == "completed" and facts[answered.id].latency_ms == answered.latency_ms
    assert facts[answered.id].tool_calls == 1 and facts[answered.id].cost == answered.cost
    assert facts[broken.id].error_code == "response_failed"
    assert list(ToolCallFact.objects.filter(turn_fact_id=answered.id).values_list("tool", "ok")) == [("lookup_order", True)]


@pytest.mark.django_db(transaction=True)
def test_queued_turn_gauge_reads_the_database(default_agent, provider):
    client = Client()
    assert value(scrape(client), "support_turns_in_state", status="queued") == Turn.objects.filter(status="queued").count()
    conversation = conversation_create(channel="api")
    posted = message_post(conversation=conversation, text="hello")
    wait_turn_finished(posted.turn.id)
    # A queued turn waiting behind a turn another process runs under a live lease: no
    # claim (this process's sweeper included) may start it while the scrape reads it.
    Turn.objects.create(conversation=conversation, user_message=posted.message, agent=default_agent, attempt=2,
                        status="running", lease_owner="another-process",
                        lease_expires_at=timezone.now() + timedelta(minutes=10))
    Turn.objects.create(conversation=conversation, user_message=posted.message, agent=default_agent, attempt=3)
    samples = scrape(client)
    assert value(samples, "support_turns_in_state", status="queued") >= 1
    assert value(samples, "support_turn_queue_oldest_age_seconds") >= 0
    assert value(samples, "support_metrics_database_up") == 1
    assert Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db
def test_websocket_gauge_follows_the_consumer_hooks():
    before = value(parse_exposition(metrics.render_metrics()[0].decode()), "support_websockets_open")
    metrics.websocket_opened()
    metrics.websocket_opened()
    metrics.websocket_closed()
    after = value(parse_exposition(metrics.render_metrics()[0].decode()), "support_websockets_open")
    metrics.websocket_closed()
    assert after - before == 1


@pytest.mark.django_db
def test_metrics_are_refused_outside_allowed_networks_without_the_token(settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "METRICS_TOKEN": "s3cret-token"}
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 403
    assert outsider.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert outsider.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200

    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM, "METRICS_TOKEN": "", "METRICS_ALLOWED_IPS": ["10.0.0.0/8"]
    }
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403


WRITER = """
import django, os
django.setup()
from conversations.ops import metrics
metrics.TOOL_CALLS.labels("lookup_order", "ok").inc()
metrics.websocket_opened()
"""
READER = """
import django
django.setup()
from conversations.ops.metrics import render_metrics
print(render_metrics()[0].decode())
"""


def test_several_processes_add_up_in_multiprocess_mode(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "DJANGO_SETTINGS_MODULE": "support.settings",
        "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(tmp_path / "var"),
    }
    (tmp_path / "prom").mkdir()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER], env=env, cwd=ROOT) for _ in range(2)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    out = subprocess.run(
        [sys.executable, "-c", READER], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = parse_exposition(out)
    assert value(samples, "support_tool_calls_total", tool="lookup_order", outcome="ok") == 2
    # Both writers have exited: their open websockets no longer count.
    assert value(samples, "support_websockets_open") == 0
