"""The database work of one turn stays small: how many statements posting, claiming,
renewing and completing cost, and that the cheaper paths still write the same rows
(the turn's fact and tool facts in its ending, a renewal's three answers)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.agent.agents import agent_cached
from conversations.models import Conversation, Turn
from conversations.observers import FINISHED_TURN_FIELDS
from conversations.ops.facts import turn_fact_record
from conversations.ops.models import ToolCallFact, TurnFact
from conversations.services.leases import turn_claim, turn_complete, turn_complete_next, turn_heartbeat
from conversations.services.locks import conversation_lock
from conversations.services.messages import message_post

pytestmark = pytest.mark.django_db  # one test transaction: nothing is dispatched on commit

OWNER = "this-host:1:test"
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """The statements that read or write rows (not transaction control)."""
    return [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith(_TRANSACTION_CONTROL)]


def _audit(**extra: Any) -> dict[str, Any]:
    return {
        "requests": [], "response_ids": ["resp_1"], "input_tokens": 50, "cached_tokens": 0, "output_tokens": 3,
        "reasoning_tokens": 0, "cost": 0.0001, "tool_rounds": 1, "latency_ms": 120, "time_to_first_token_ms": 40,
        "partial_text": "", "model": "gpt-4.1-mini", **extra,
    }


def test_a_turn_costs_a_few_statements_and_writes_its_facts(conversation: Conversation) -> None:
    row_locks = connection.features.has_select_for_update
    agent_cached(conversation.agent_id)  # the per-process agent cache is warm in a running process
    with CaptureQueriesContext(connection) as posting:
        posted = message_post(conversation=conversation, text="Where is order 1001?")
    # The conversation lock, the message, its search index entry, the turn, the counters.
    assert len(_statements(posting)) == 5, "\n".join(s[:90] for s in _statements(posting))

    with CaptureQueriesContext(connection) as claiming:
        turn = turn_claim(conversation_id=conversation.pk, owner=OWNER, check_first=False)
    assert turn is not None and turn.pk == posted.turn.pk
    # (PostgreSQL) the conversation lock, the running and queued turns, the claim.
    assert len(_statements(claiming)) == (3 if row_locks else 2), _statements(claiming)

    with CaptureQueriesContext(connection) as renewing:
        assert turn_heartbeat(turn_id=turn.pk, owner=OWNER) == "ok"
    assert len(_statements(renewing)) == 1

    items = [
        {"kind": "function_call", "tool_name": "lookup_order", "call_id": "call_1", "tool_arguments": "{}"},
        {"kind": "function_output", "tool_name": "lookup_order", "call_id": "call_1", "text": "{}",
         "metadata": {"ok": False}},
        {"kind": "assistant", "text": "I could not find that order."},
    ]
    with CaptureQueriesContext(connection) as completing:
        stored = turn_complete(turn_id=turn.pk, owner=OWNER, items=items, audit=_audit())
    assert stored is not None and [m.seq for m in stored] == [2, 3, 4]
    written = _statements(completing)
    # The lock (with the turn's fact fields), the turn, the items, their index entries,
    # the fact, its tool fact, the counters. The turn's audit is never read back.
    assert len(written) == 7, written
    assert not any('"requests"' in sql for sql in written if sql.lstrip().upper().startswith("SELECT"))

    done = Turn.objects.get(pk=turn.pk)
    fact = TurnFact.objects.get(turn_id=turn.pk)
    assert (fact.status, fact.latency_ms, fact.ttft_ms, fact.input_tokens) == ("completed", 120, 40, 50)
    assert (fact.agent_id, fact.created_at, fact.cost) == (done.agent_id, done.created_at, done.cost)
    assert (fact.tool_calls, fact.tool_errors) == (1, 1)
    assert list(ToolCallFact.objects.filter(turn_fact=fact).values_list("tool", "ok")) == [("lookup_order", False)]
    # Recording the fact again (a rebuild) rewrites the one row and its tool facts.
    done.latency_ms = 99
    turn_fact_record(done)
    assert list(TurnFact.objects.filter(turn_id=turn.pk).values_list("latency_ms", "tool_calls")) == [(99, 1)]
    assert ToolCallFact.objects.filter(turn_fact=fact).count() == 1
    conversation.refresh_from_db()
    assert (conversation.next_seq, conversation.message_count, conversation.input_tokens) == (5, 4, 50)


def test_a_lease_renewal_answers_ok_cancel_or_lost(conversation: Conversation) -> None:
    message_post(conversation=conversation, text="Hello")
    turn = turn_claim(conversation_id=conversation.pk, owner=OWNER, check_first=False)
    assert turn is not None
    assert turn_heartbeat(turn_id=turn.pk, owner=OWNER) == "ok"
    Turn.objects.filter(pk=turn.pk).update(cancel_requested=True, lease_expires_at=timezone.now())
    assert turn_heartbeat(turn_id=turn.pk, owner=OWNER) == "cancel"
    # A cancelled turn keeps its lease while the runner records the cancellation.
    assert Turn.objects.get(pk=turn.pk).lease_expires_at > timezone.now() + timedelta(seconds=1)
    assert turn_heartbeat(turn_id=turn.pk, owner="someone-else") == "lost"
    Turn.objects.filter(pk=turn.pk).update(status="failed")
    assert turn_heartbeat(turn_id=turn.pk, owner=OWNER) == "lost"


def test_a_claim_that_fails_an_expired_turn_records_its_fact_from_the_row(conversation: Conversation) -> None:
    """The claim loads only what a plan needs; the fact of the turn it fails on the way
    reads the remaining fields from the row, not defaults."""
    first = message_post(conversation=conversation, text="First").turn
    message_post(conversation=conversation, text="Second")
    past = timezone.now() - timedelta(seconds=60)
    Turn.objects.filter(pk=first.pk).update(
        status="running", lease_owner="dead-host:9:gone", lease_expires_at=past, started_at=past, input_tokens=7,
    )
    claimed = turn_claim(conversation_id=conversation.pk, owner=OWNER, check_first=False)
    assert claimed is not None and claimed.pk != first.pk
    fact = TurnFact.objects.get(turn_id=first.pk)
    assert (fact.status, fact.error_code, fact.input_tokens) == ("failed", "interrupted", 7)


def test_posting_the_same_client_id_again_writes_nothing(conversation: Conversation) -> None:
    first = message_post(conversation=conversation, text="Hello", client_id="c-1")
    again = message_post(conversation=conversation, text="Hello", client_id="c-1")
    assert (again.created, again.message.pk, again.turn.pk) == (False, first.message.pk, first.turn.pk)
    conversation.refresh_from_db()
    assert (conversation.next_seq, conversation.message_count, conversation.turn_count) == (2, 1, 1)
    assert conversation.messages.count() == 1 and Turn.objects.filter(conversation=conversation).count() == 1


def test_completing_a_turn_says_whether_another_is_queued_in_the_same_statements(conversation: Conversation) -> None:
    """The drain asks no "anything more?" of its own: the completion's lock reads it."""
    first = message_post(conversation=conversation, text="First").turn
    second = message_post(conversation=conversation, text="Second").turn
    answer = [{"kind": "assistant", "text": "Answered."}]
    claimed = turn_claim(conversation_id=conversation.pk, owner=OWNER, check_first=False)
    assert claimed is not None and claimed.pk == first.pk
    with CaptureQueriesContext(connection) as completing:
        stored, more = turn_complete_next(turn_id=first.pk, owner=OWNER, items=answer, audit=_audit())
    assert stored is not None and more is True
    assert len(_statements(completing)) == 6, _statements(completing)  # lock, turn, item, index, fact, counters

    claimed = turn_claim(conversation_id=conversation.pk, owner=OWNER, check_first=False)
    assert claimed is not None and claimed.pk == second.pk
    stored, more = turn_complete_next(turn_id=second.pk, owner=OWNER, items=answer, audit=_audit())
    assert stored is not None and more is False
    # A worker that lost the turn writes nothing and still answers.
    assert turn_complete_next(turn_id=second.pk, owner=OWNER, items=answer, audit=_audit())[0] is None


def test_the_prepared_locks_read_rows_as_the_orm_does(conversation: Conversation) -> None:
    """The conversation lock and the finishing lock run SQL the ORM built once: the rows
    they return are the ORM's, converted the same way, and a missing row is refused."""
    Conversation.objects.filter(pk=conversation.pk).update(metadata={"plan": "gold", "n": [1, 2]})
    posted = message_post(conversation=conversation, text="Hello")
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        expected = Conversation.objects.get(pk=conversation.pk)
        assert {f.attname: getattr(locked, f.attname) for f in Conversation._meta.concrete_fields} == {
            f.attname: getattr(expected, f.attname) for f in Conversation._meta.concrete_fields
        }
        assert locked._state.adding is False and locked.metadata == {"plan": "gold", "n": [1, 2]}
        row, turn = conversation_lock(None, turn_id=posted.turn.pk, turn_fields=FINISHED_TURN_FIELDS, with_queued=True)
        assert (turn.pk, turn.status, turn.created_at, turn.more_queued) == (
            posted.turn.pk, "queued", Turn.objects.get(pk=posted.turn.pk).created_at, True
        )
        assert row.pk == conversation.pk and turn.conversation is row
        with pytest.raises(Conversation.DoesNotExist):
            conversation_lock(uuid.uuid4())
        with pytest.raises(Turn.DoesNotExist):
            conversation_lock(None, turn_id=uuid.uuid4(), turn_fields=FINISHED_TURN_FIELDS)
