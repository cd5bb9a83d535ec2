"""A turn's recorded times follow the order turns really ran in: in one conversation a
turn's `started_at` is never before the previous turn's `finished_at`.

Turns of a conversation run one at a time, so the audit must not show them
overlapping. The ways it used to: a claim that took its clock reading before waiting
for the conversation's lock (held by the turn that was finishing), and a claim that
failed an expired turn after reading the clock it then used as the next turn's start.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from conversations.models import Conversation, Turn
from conversations.services.leases import turn_claim, turn_complete
from tests.conftest import wait_for
from tests.engine.support import ask
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)


def _store_without_turn(conversation: Conversation, words: str):
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=True)
    message = ask(conversation, words).message
    Conversation.objects.filter(pk=conversation.pk).update(ai_paused=False)
    return message


def _turn(conversation: Conversation, words: str, **fields) -> Turn:
    return Turn.objects.create(
        conversation=conversation, user_message=_store_without_turn(conversation, words),
        agent=conversation.agent, model="gpt-4.1-mini", **fields,
    )


def assert_no_overlap(conversation: Conversation) -> None:
    turns = list(Turn.objects.filter(conversation=conversation).order_by("created_at"))
    for previous, turn in zip(turns, turns[1:], strict=False):
        assert turn.started_at >= previous.finished_at, (
            f"turn {turn.pk} started {previous.finished_at - turn.started_at} before the previous one finished"
        )


def test_quick_successive_messages_run_one_after_another_in_the_audit(conversation, provider):
    for n in range(4):
        provider.queue(text(f"Answer {n}."))
    posted = [ask(conversation, f"Question {n}?") for n in range(4)]

    wait_for(lambda: Turn.objects.filter(pk__in=[p.turn.pk for p in posted], status="completed").count() == 4,
             timeout=30)

    assert_no_overlap(conversation)


def test_a_turn_claimed_behind_an_expired_one_starts_after_its_failure(conversation):
    now = timezone.now()
    dead = _turn(conversation, "First?", status="running", lease_owner="gone:1:x",
                 lease_expires_at=now - timedelta(seconds=5), started_at=now - timedelta(seconds=30))
    _turn(conversation, "Second?", status="queued")

    claimed = turn_claim(conversation_id=conversation.pk, owner="here:2:y")

    dead.refresh_from_db()
    assert dead.status == "failed" and claimed is not None
    assert claimed.started_at >= dead.finished_at
    assert_no_overlap(conversation)


def test_a_claim_queued_behind_the_finishing_turn_starts_after_it_finished(conversation):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: on SQLite a claim's transaction begins only after the finish committed")
    running = _turn(conversation, "First?", status="running", lease_owner="here:1:a",
                    lease_expires_at=timezone.now() + timedelta(seconds=60), started_at=timezone.now())
    _turn(conversation, "Second?", status="queued")
    release = threading.Event()
    claimed: list[Turn | None] = []

    def in_thread(work):
        def run() -> None:
            try:
                work()
            finally:
                close_old_connections()
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def holder() -> None:  # e.g. the customer's next message being stored
        with transaction.atomic():
            Conversation.objects.select_for_update().get(pk=conversation.pk)
            release.wait(30)

    def finisher() -> None:
        turn_complete(turn_id=running.pk, owner="here:1:a",
                      items=[{"kind": "assistant", "text": "First answer."}], audit={})

    def claimer() -> None:
        claimed.append(turn_claim(conversation_id=conversation.pk, owner="there:2:b"))

    # Given the conversation's row is locked, the finishing turn waits for it first,
    # and then another process's claim queues behind the finish
    threads = [in_thread(holder)]
    wait_for(lambda: _connections_in_transaction() == 1, timeout=30)
    threads.append(in_thread(finisher))
    wait_for(lambda: _waiting_on_a_lock() == 1, timeout=30)
    threads.append(in_thread(claimer))
    wait_for(lambda: _waiting_on_a_lock() == 2, timeout=30)
    # When the lock is released: the turn finishes, then the claim goes through
    release.set()
    for thread in threads:
        thread.join(30)

    # Then the next turn's recorded start follows the previous turn's finish
    assert claimed and claimed[0] is not None
    assert_no_overlap(conversation)


def _activity(condition: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       f"AND pid <> pg_backend_pid() AND {condition}")
        return cursor.fetchone()[0]


def _waiting_on_a_lock() -> int:
    return _activity("wait_event_type = 'Lock'")


def _connections_in_transaction() -> int:
    return _activity("state = 'idle in transaction'")
