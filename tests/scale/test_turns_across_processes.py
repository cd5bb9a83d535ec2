"""Two daphne processes share PostgreSQL and Redis: turns of one conversation run one
at a time and in order whichever process claims them; different conversations run in
parallel; a process killed mid-turn loses nothing (its turn fails as interrupted once
the lease expires, a retry answers it)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from conversations.services.turns import turn_retry
from tests import fake_provider as fp
from tests.conftest import wait_for, wait_turn_finished
from tests.scale.harness import LEASE_SECONDS

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def last_user_text(body: dict[str, Any]) -> str:
    return [item for item in body["input"] if item.get("role") == "user"][-1]["content"]


def echo(body: dict[str, Any]) -> fp.Step:
    return fp.text(f"Answer to {last_user_text(body)}", delay=0.15)


def transcript(conversation: Any) -> list[tuple[int, str, str]]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "kind", "text"))


def test_turns_of_one_conversation_run_one_at_a_time_in_order_across_processes(scale):
    # Given both processes' sweepers competing for one conversation's queued turns
    scale.provider.responder = echo
    conversation = conversation_create(channel="api")
    scale.recorder.subscribe(conversation.id)
    # When four messages arrive quickly
    posted = [message_post(conversation=conversation, text=f"question {n}") for n in range(1, 5)]
    turns = [wait_turn_finished(p.turn.id, timeout=30) for p in posted]
    # Then each is answered, in order, each turn starting after the previous one finished
    assert [t.status for t in turns] == ["completed"] * 4, [t.error_message for t in turns]
    for earlier, later in zip(turns, turns[1:], strict=False):
        assert later.started_at >= earlier.finished_at
    answers = [m for m in transcript(conversation) if m[1] == "assistant"]
    assert [a[2] for a in answers] == [f"Answer to question {n}" for n in range(1, 5)]
    assert [m[0] for m in transcript(conversation)] == list(range(1, 9))  # gap-free, nothing twice
    # and the provider was asked once per message, in order, each request with the
    # messages before it
    bodies = scale.provider.requests
    assert [last_user_text(b) for b in bodies] == [f"question {n}" for n in range(1, 5)]
    assert all(f"question {n - 1}" in str(bodies[n - 1]["input"]) for n in range(2, 5))
    # and every turn ran in a process of the cluster, whose events reached Redis subscribers
    assert all(scale.cluster.owner_of(t.lease_owner) for t in turns)
    wait_for(lambda: len(scale.recorder.of("turn.completed")) == 4)


def test_different_conversations_run_in_parallel(scale):
    # Given the provider holds every request until released
    gate = threading.Event()
    scale.provider.responder = lambda body: fp.text("Done.", gate=gate)
    conversations = [conversation_create(channel="api") for _ in range(6)]
    posted = [message_post(conversation=c, text="hello") for c in conversations]
    try:
        # Then all six turns are at the provider at once: no conversation waits for another
        wait_for(lambda: len(scale.provider.requests) == 6, timeout=20)
        running = Turn.objects.filter(status="running")
        assert running.count() == 6
        assert all(scale.cluster.owner_of(t.lease_owner) for t in running)
    finally:
        gate.set()
    assert all(wait_turn_finished(p.turn.id).status == "completed" for p in posted)


def test_a_process_killed_mid_turn_loses_nothing(scale):
    # Given a turn streaming slowly in one of the processes
    scale.provider.queue(fp.text("This answer will never be finished by its process", delta_delay=0.5),
                         fp.text("Here is the full answer."))
    conversation = conversation_create(channel="widget")
    scale.recorder.subscribe(conversation.id)
    posted = message_post(conversation=conversation, text="Where is my order?", client_id="c-1")
    wait_for(lambda: any(e["type"] == "response.output_text.delta" for e in scale.provider.events_sent), timeout=20)
    turn = Turn.objects.get(pk=posted.turn.id)
    assert turn.status == "running"
    victim = scale.cluster.owner_of(turn.lease_owner)
    survivor = next(p for p in scale.cluster.processes if p is not victim)
    # When that process is killed -9 mid-stream
    victim.kill()
    # Then after the lease expires the surviving process fails the turn as interrupted
    failed = wait_turn_finished(turn.id, timeout=LEASE_SECONDS + 10)
    assert failed.status == "failed" and failed.error_code == "interrupted"
    assert survivor.alive()
    wait_for(lambda: scale.recorder.of("turn.failed", turn.id))
    assert transcript(conversation) == [(1, "user", "Where is my order?")]  # no half answer stored
    # and a retry (served by the survivor) answers the intact user message
    retried = turn_retry(turn=failed)
    done = wait_turn_finished(retried.id, timeout=20)
    assert done.status == "completed" and done.attempt == 2
    assert survivor.owns(done.lease_owner)
    assert transcript(conversation) == [(1, "user", "Where is my order?"), (2, "assistant", "Here is the full answer.")]
    assert Message.objects.filter(conversation=conversation, client_id="c-1").count() == 1
    assert len(scale.provider.requests) == 2
    # and posting the same client_id again returns the stored message, creating nothing
    again = message_post(conversation=conversation, text="Where is my order?", client_id="c-1")
    assert not again.created and again.message.seq == 1
    assert Turn.objects.filter(conversation=conversation).count() == 2
