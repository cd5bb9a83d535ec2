"""Leases: a turn whose worker died is failed as interrupted and can be retried; a worker
that lost its lease can never write its answer; cancelling stops a running turn."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from conversations.agent.engine import Engine, engine
from conversations.agent.events import group_name
from conversations.models import Conversation, Message, Turn
from conversations.services.conversations import conversation_take_over
from conversations.services.leases import turn_complete, turns_expire_leases
from conversations.services.turns import turn_cancel, turn_retry
from tests.conftest import await_for
from tests.engine.support import answered, ask, engine_idle, finished, items_of, kinds, wait_until
from tests.fake_provider import calls, text
from tools.registry import ToolContext

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_WORKER = "other-host:4242:deadbeef"


def _turn_left_by_a_dead_worker(conversation: Conversation, text_: str = "Where is my order?") -> Turn:
    """A user message whose turn a crashed process was running: its lease ran out."""
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)  # store without queueing
    message = ask(conversation, text_).message
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=False)
    now = timezone.now()
    return Turn.objects.create(
        conversation=conversation, user_message=message, agent=conversation.agent, model="gpt-4.1-mini",
        status="running", lease_owner=DEAD_WORKER, lease_expires_at=now - timedelta(seconds=5),
        started_at=now - timedelta(seconds=40),
    )


async def test_the_sweeper_fails_a_dead_workers_turn_and_a_retry_answers_it(bound, conversation, provider):
    dead = await sync_to_async(_turn_left_by_a_dead_worker)(conversation)

    await bound.sweep()

    dead = await Turn.objects.aget(pk=dead.pk)
    assert dead.status == "failed" and dead.error_code == "interrupted"
    assert dead.lease_expires_at is None
    assert (await Conversation.objects.aget(pk=conversation.pk)).has_failed_turn is True
    assert not await Message.objects.filter(conversation=conversation, kind="assistant").aexists()

    provider.queue(text("Your order is on its way."))
    retry = await sync_to_async(turn_retry)(turn=dead)
    await bound.wait_idle(15)
    retry = await Turn.objects.aget(pk=retry.pk)
    assert retry.status == "completed" and retry.attempt == 2
    answer = await Message.objects.aget(conversation=conversation, kind="assistant")
    assert answer.text == "Your order is on its way." and answer.turn_id == retry.pk


async def test_a_bound_engine_sweeps_by_itself(conversation, provider, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0.05}
    dead = await sync_to_async(_turn_left_by_a_dead_worker)(conversation)
    other_process = Engine()  # e.g. a second daphne worker

    other_process.bind()
    try:
        await await_for(lambda: Turn.objects.filter(pk=dead.pk, status="failed").aexists(), timeout=10)
    finally:
        await other_process.close()

    assert (await Turn.objects.aget(pk=dead.pk)).error_code == "interrupted"


def test_a_new_message_behind_a_dead_turn_is_not_stuck(conversation, provider):
    dead = _turn_left_by_a_dead_worker(conversation)
    provider.queue(text("Answering your latest message."))

    latest = answered(ask(conversation, "Hello? Is anyone there?"))

    assert latest.status == "completed", latest.error_message
    assert Turn.objects.get(pk=dead.pk).error_code == "interrupted"


def test_a_turn_queued_in_another_process_runs_next_here_without_the_sweeper(
    conversation, provider, register_tool, gates, settings, monkeypatch
):
    """The drain learns from the completion (read under its lock) that another turn is
    queued, and claims it at once: a message whose dispatch went to another process
    (which could not claim while this turn ran) waits for no sweep."""
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "ORPHAN_GRACE_SECONDS": 3600}
    gate, entered = gates(), threading.Event()

    def slow_lookup(context: ToolContext) -> str:
        """Takes its time."""
        entered.set()
        gate.wait(10)
        return "found"

    register_tool(slow_lookup)
    provider.queue(calls(("slow_lookup", {})), text("First answer."), text("Second answer."))
    first = ask(conversation, "First")
    assert entered.wait(10)
    with monkeypatch.context() as elsewhere:  # this post's dispatch goes to another process
        elsewhere.setattr(engine, "dispatch", lambda conversation_id: None)
        second = ask(conversation, "Second")
    gate.set()

    assert answered(first).status == "completed"
    assert answered(second, timeout=10).status == "completed"
    assert [m.text for m in items_of(conversation, "assistant")] == ["First answer.", "Second answer."]


def test_a_worker_that_lost_its_lease_cannot_write_its_answer(conversation, provider, register_tool, gates):
    # Given a worker stalled inside a tool
    gate, entered = gates(), threading.Event()

    def stalled_lookup(context: ToolContext) -> str:
        """Stalls."""
        entered.set()
        gate.wait(10)
        return "a result that arrives too late"

    register_tool(stalled_lookup)
    provider.queue(calls(("stalled_lookup", {})), text("A late answer that must never be stored."))
    stalled = ask(conversation, "Check it").turn
    assert entered.wait(10)

    # When its lease expires and the sweeper fails the turn
    Turn.objects.filter(pk=stalled.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    # (the engine's own sweeper may get there first, and on PostgreSQL skips a row another
    # sweep holds: then it commits a moment later; either way the turn is failed)
    assert [t.pk for t in turns_expire_leases()] in ([stalled.pk], [])
    wait_until(lambda: Turn.objects.get(pk=stalled.pk).error_code == "interrupted", timeout=10)
    # ...and the worker wakes up and carries on
    gate.set()
    engine_idle()

    # Then nothing it produced was stored, and its turn stays failed
    stalled = Turn.objects.get(pk=stalled.pk)
    assert stalled.status == "failed" and stalled.error_code == "interrupted"
    assert kinds(conversation) == ["user"]
    # And a retry is answered normally
    provider.queue(text("Answer from the retry."))
    retry = finished(turn_retry(turn=stalled))
    assert retry.status == "completed"
    assert [m.text for m in items_of(conversation, "assistant")] == ["Answer from the retry."]


def test_only_the_lease_owner_can_complete_a_turn(conversation):
    dead = _turn_left_by_a_dead_worker(conversation)
    Turn.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=30))
    answer = [{"kind": "assistant", "text": "Not yours to give."}]

    assert turn_complete(turn_id=dead.pk, owner="some-other-worker", items=answer, audit={}) is None
    turns_expire_leases()  # nothing expired yet: the owner still holds it
    Turn.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    turns_expire_leases()
    assert turn_complete(turn_id=dead.pk, owner=DEAD_WORKER, items=answer, audit={}) is None

    assert kinds(conversation) == ["user"]
    assert Turn.objects.get(pk=dead.pk).status == "failed"


INTERRUPTED_ANSWER = "I was saying something important when"


async def _running_with_streamed_text(conversation: Conversation, provider: Any, gate: threading.Event) -> Turn:
    """A turn that has streamed (and published) some text, then waits on the model."""
    provider.queue(text(INTERRUPTED_ANSWER, gate=gate, pause_after=2))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation.pk), channel)
    turn = (await sync_to_async(ask)(conversation, "Tell me")).turn
    while (await asyncio.wait_for(layer.receive(channel), 10))["event"]["type"] != "text.delta":
        pass
    return turn


async def _finished(turn: Turn) -> Turn:
    return await await_for(lambda: _finished_turn(turn.pk), timeout=15)


async def _finished_turn(pk: Any) -> Turn | None:
    turn = await Turn.objects.aget(pk=pk)
    return turn if turn.is_finished else None


async def test_cancelling_a_running_turn_stops_it_without_an_answer(bound, conversation, provider, gates):
    turn = await _running_with_streamed_text(conversation, provider, gates())

    await sync_to_async(turn_cancel)(turn=turn)
    turn = await _finished(turn)

    assert turn.status == "cancelled" and turn.error_message == "Cancelled while running."
    assert not await Message.objects.filter(conversation=conversation, kind="assistant").aexists()
    # What had streamed is kept for the audit only: the first word at least (the second
    # may still have been on the wire when the cancel landed)
    assert turn.partial_text.startswith("I ") and INTERRUPTED_ANSWER.startswith(turn.partial_text)
    assert turn.finished_at is not None and turn.lease_expires_at is None


async def test_a_staff_takeover_stops_the_running_turn(bound, conversation, provider, gates, admin_user):
    turn = await _running_with_streamed_text(conversation, provider, gates())

    await sync_to_async(conversation_take_over)(conversation=conversation, actor=admin_user)

    assert (await _finished(turn)).status == "cancelled"
    refreshed = await Conversation.objects.aget(pk=conversation.pk)
    assert refreshed.ai_paused is True
    assert not await Message.objects.filter(conversation=conversation, kind="assistant").aexists()
