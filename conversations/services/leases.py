"""The lease lifecycle of a turn, engine-facing: claim, heartbeat, complete, fail,
stop when cancelled, expire, find orphans.

Turns of one conversation run one at a time, in the order they were queued, across
processes: `turn_claim` serialises on the conversation row, refuses while another turn
of it is running under a live lease, and moves the oldest queued turn to running with a
lease owned by the caller. The runner renews the lease (`turn_heartbeat`); every write
that ends a turn is conditioned on the caller still owning it, so a process that lost
its lease (it stalled, the sweeper failed its turn, a retry began) can never write a
late answer. Rows are locked through `locks.conversation_lock` (conversation, then
turn). The sweeps lock with SKIP LOCKED: a sweeper leaves a conversation someone is
working on to them, so sweepers in several processes never queue behind each other or a
live turn. The commands the doors call (queue, retry, cancel) are in `turns`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from conversations import observers
from conversations.agent.events import (
    message_event,
    turn_cancelled_event,
    turn_completed_event,
    turn_failed_event,
)
from conversations.conf import platform_setting
from conversations.models import Conversation, Message, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import AttemptAudit, TurnError, TurnStatus
from conversations.observers import FINISHED_TURN_FIELDS
from conversations.services.engine_port import publish_on_commit
from conversations.services.items import ITEM_COUNTER_FIELDS, items_append
from conversations.services.locks import conversation_lock, conversations_lock_batch
from conversations.services.prepared import PreparedRead, row_save, rows_update


def _lease_deadline() -> Any:
    return timezone.now() + timedelta(seconds=platform_setting("TURN_LEASE_SECONDS"))


def conversation_has_failed_turn(conversation_id: UUID | str) -> bool:
    """True when some user message's latest attempt failed."""
    later = Turn.objects.filter(user_message=OuterRef("user_message"), attempt__gt=OuterRef("attempt"))
    return (
        Turn.objects.filter(conversation_id=conversation_id, status=TurnStatus.FAILED)
        .filter(~Exists(later))
        .exists()
    )


def _failed_fields(code: str, message: str) -> dict[str, Any]:
    return {
        "status": TurnStatus.FAILED,
        "error_code": code,
        "error_message": message[:2000],
        "finished_at": timezone.now(),
        "lease_expires_at": None,
    }


def _set(turn: Turn, fields: dict[str, Any]) -> Turn:
    for name, value in fields.items():
        setattr(turn, name, value)
    return turn


def _flag_failed(conversation_id: UUID | str) -> None:
    # A turn that fails is its message's latest attempt (a retry needs it finished).
    Conversation.objects.filter(pk=conversation_id, has_failed_turn=False).update(has_failed_turn=True)


# What a claimed turn carries into its plan (the rest of the audit row is not read).
TURN_PLAN_FIELDS = (
    "id", "conversation_id", "user_message_id", "agent_id", "status", "attempt", "model", "lease_expires_at",
    "created_at", "conversation__id", "conversation__customer_id", "conversation__customer_kind",
    "conversation__customer_email", "conversation__metadata", "user_message__id",
    "user_message__conversation_id", "user_message__seq", "user_message__kind", "user_message__text",
    "user_message__token_count", "user_message__tool_name", "user_message__call_id",
    "user_message__tool_arguments", "user_message__metadata",
)


# The claim's read: the conversation's running and queued turns, oldest first, with what
# a plan needs (built by the ORM once; see `prepared`).
_CLAIMABLE = PreparedRead(
    lambda conversation_id: Turn.objects.filter(
        conversation_id=conversation_id, status__in=[TurnStatus.RUNNING, TurnStatus.QUEUED]
    ).select_related("conversation", "user_message").only(*TURN_PLAN_FIELDS).order_by("created_at"),
    Turn._meta.get_field("conversation"),
)


def turn_claim(*, conversation_id: UUID | str, owner: str, check_first: bool = True) -> Turn | None:
    """Claim the conversation's oldest queued turn for `owner` and return it (with its
    conversation and user message loaded), or None when a turn of it is already running
    under a live lease, or nothing is queued. A running turn whose lease expired is
    failed as interrupted on the way. `check_first` looks for a queued turn before
    taking the write lock (the common "anything more?" case)."""
    if check_first and not Turn.objects.filter(conversation_id=conversation_id, status=TurnStatus.QUEUED).exists():
        return None
    with transaction.atomic():
        # Claims of one conversation queue on its row. (SQLite has no row locks: its
        # IMMEDIATE transactions already let one writer in at a time.)
        if connection.features.has_select_for_update:
            try:
                conversation_lock(conversation_id)
            except Conversation.DoesNotExist:
                return None
        # Read the clock only now, after any wait for the lock: a turn that was finishing
        # held it and took its finish time before committing, so this start follows it.
        now = timezone.now()
        turns = _CLAIMABLE.all(conversation_id)
        for turn in turns:
            if turn.status != TurnStatus.RUNNING:
                continue
            if not (turn.lease_expires_at and turn.lease_expires_at < now):
                return None
            # Conditional: the worker may be finishing at this very moment.
            fields = _failed_fields(TurnError.INTERRUPTED, "The worker running this turn stopped.")
            if not Turn.objects.filter(pk=turn.pk, status=TurnStatus.RUNNING, lease_expires_at__lt=now).update(**fields):
                return None
            _flag_failed(conversation_id)
            _set(turn, fields)
            observers.turn_finished(turn, None)
            publish_on_commit(conversation_id, turn_failed_event(turn))
        waiting = [t for t in turns if t.status == TurnStatus.QUEUED]
        if not waiting:
            return None
        turn = waiting[0]
        fields = {
            # Not `now`: an expired turn failed just above finished after it.
            "status": TurnStatus.RUNNING, "lease_owner": owner, "lease_expires_at": _lease_deadline(),
            "started_at": timezone.now(),
        }
        if not rows_update(Turn, {"id": turn.pk, "status": TurnStatus.QUEUED}, fields):
            return None
        _set(turn, fields)
        return turn


def turn_heartbeat(*, turn_id: UUID | str, owner: str) -> str:
    """Renew the lease. Returns "ok", "cancel" (someone asked the turn to stop) or
    "lost" (the caller no longer owns the turn and must stop without writing).
    The common case (owned, not cancelled) is one UPDATE."""
    owned = Turn.objects.filter(pk=turn_id, status=TurnStatus.RUNNING, lease_owner=owner)
    deadline = _lease_deadline()
    if owned.filter(cancel_requested=False).update(lease_expires_at=deadline):
        return "ok"
    # Cancelled, or no longer ours: renew if still ours (the runner records the
    # cancellation under the lease), and say which.
    return "cancel" if owned.update(lease_expires_at=deadline) else "lost"


def _lock_for_finish(turn_id: UUID | str) -> Turn:
    """Lock the turn's conversation (lock order: conversation, then turn; the turn itself
    is written by a conditional UPDATE) and read, in the same statement, the turn fields
    its ending records besides those it writes. They do not change while the turn
    runs (they are set when it is queued or claimed), so reading them with the lock
    is as good as after it. Returns the turn with `.conversation` (the whole locked row,
    its counters current) loaded; the turn's wide audit columns are not read."""
    _conversation, turn = conversation_lock(None, turn_id=turn_id, turn_fields=FINISHED_TURN_FIELDS)
    return turn


def _finish_owned(turn: Turn, owner: str, fields: dict[str, Any]) -> Turn | None:
    """Write a running turn's final fields if `owner` still holds it: one conditional
    UPDATE, so a worker that lost its lease (the sweeper failed the turn, a retry
    began) writes nothing. Returns `turn` with the fields set, or None.
    Precondition: `turn` comes from `_lock_for_finish` in this transaction."""
    if not rows_update(Turn, {"id": turn.pk, "status": TurnStatus.RUNNING, "lease_owner": owner}, fields):
        return None
    return _set(turn, fields)


_AUDIT_FIELDS = (
    "requests",
    "history",
    "history_budget",
    "history_tokens",
    "response_ids",
    "rounds",
    "partial_text",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost",
    "tool_rounds",
    "time_to_first_token_ms",
    "latency_ms",
    "model",
    "redactions",
    "guardrails",
)


def _audit_fields(audit: AttemptAudit) -> dict[str, Any]:
    return {name: value for name, value in audit.items() if name in _AUDIT_FIELDS}


_USAGE_FIELDS: tuple[Literal["input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"], ...] = (
    "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens",
)
_TOTAL_FIELDS = [*_USAGE_FIELDS, "cost", "updated_at"]


def _add_totals(conversation: Conversation, audit: AttemptAudit) -> list[str]:
    """Add the turn's usage to the locked conversation in memory; returns the fields."""
    for name in _USAGE_FIELDS:
        setattr(conversation, name, getattr(conversation, name) + int(audit.get(name, 0)))
    conversation.cost += Decimal(str(audit.get("cost", 0)))
    return list(_TOTAL_FIELDS)


def turn_complete(
    *, turn_id: UUID | str, owner: str, items: list[dict[str, Any]], audit: AttemptAudit,
) -> list[Message] | None:
    """Store the turn's items (function calls, outputs, the answer) and complete it,
    atomically. Returns None, writing nothing, if the caller lost the turn."""
    return turn_complete_next(turn_id=turn_id, owner=owner, items=items, audit=audit)[0]


def turn_complete_next(
    *, turn_id: UUID | str, owner: str, items: list[dict[str, Any]], audit: AttemptAudit,
) -> tuple[list[Message] | None, bool]:
    """`turn_complete`, and whether another turn of the conversation is queued: read in
    the finishing lock's statement, so the drain needs no query of its own to know
    whether to go on. (A turn queued after this commits dispatches itself.)"""
    with transaction.atomic():
        _conversation, turn = conversation_lock(
            None, turn_id=turn_id, turn_fields=FINISHED_TURN_FIELDS, with_queued=True
        )
        more_queued = bool(getattr(turn, "more_queued", True))
        conversation = turn.conversation
        fields = {
            **_audit_fields(audit), "status": TurnStatus.COMPLETED, "finished_at": timezone.now(),
            "lease_expires_at": None,
        }
        if _finish_owned(turn, owner, fields) is None:
            return None, more_queued
        messages = items_append(
            conversation=conversation,
            items=[{**item, "turn_id": turn.pk} for item in items],
            model=audit.get("model"),
            locked=True,
            save=False,
        )
        observers.turn_finished(turn, messages)
        changed = [*ITEM_COUNTER_FIELDS, *_add_totals(conversation, audit)]
        if conversation.has_failed_turn:  # this answer may settle an earlier failure
            conversation.has_failed_turn = conversation_has_failed_turn(conversation.pk)
            changed.append("has_failed_turn")
        row_save(conversation, changed)
        for message in messages:
            publish_on_commit(conversation.pk, message_event(message))
        answer = [m for m in messages if m.kind == MessageKind.ASSISTANT]
        publish_on_commit(
            conversation.pk, turn_completed_event(turn, message_seq=answer[-1].seq if answer else None)
        )
    return messages, more_queued


def turn_fail(
    *, turn_id: UUID | str, owner: str, code: str, message: str, audit: AttemptAudit,
) -> bool:
    """Fail the turn, keeping its audit (including any partial text, which is never
    stored as an answer). False if the caller lost the turn."""
    with transaction.atomic():
        turn = _lock_for_finish(turn_id)
        conversation = turn.conversation
        fields = {**_audit_fields(audit), **_failed_fields(code, message)}
        if _finish_owned(turn, owner, fields) is None:
            return False
        observers.turn_finished(turn, None)
        conversation.has_failed_turn = True
        conversation.save(update_fields=[*_add_totals(conversation, audit), "has_failed_turn"])
        publish_on_commit(conversation.pk, turn_failed_event(turn))
    return True


def turn_finish_cancelled(
    *, turn_id: UUID | str, owner: str, audit: AttemptAudit
) -> bool:
    """Record that a running turn stopped because it was asked to. False if the caller
    lost the turn."""
    with transaction.atomic():
        turn = _lock_for_finish(turn_id)
        conversation = turn.conversation
        fields = {
            **_audit_fields(audit), "status": TurnStatus.CANCELLED, "error_message": "Cancelled while running.",
            "finished_at": timezone.now(), "lease_expires_at": None,
        }
        if _finish_owned(turn, owner, fields) is None:
            return False
        observers.turn_finished(turn, None)
        conversation.save(update_fields=_add_totals(conversation, audit))
        publish_on_commit(conversation.pk, turn_cancelled_event(turn))
    return True


def turns_expire_leases() -> list[Turn]:
    """Fail running turns whose lease expired (their worker died). Returns them; their
    `turn.failed` events are left to the caller (the sweeper publishes them at once).
    A conversation locked by someone else is skipped: a claim there fails the turn
    itself, or the next sweep does."""
    expired = []
    now = timezone.now()
    candidates = list(
        Turn.objects.filter(status=TurnStatus.RUNNING, lease_expires_at__lt=now).values_list("pk", "conversation_id")[:200]
    )
    for pk, conversation_id in candidates:
        with transaction.atomic():
            if conversation_lock(conversation_id, skip_locked=True) is None:
                continue
            fields = _failed_fields(TurnError.INTERRUPTED, "The worker running this turn stopped before it finished.")
            if not Turn.objects.filter(pk=pk, status=TurnStatus.RUNNING, lease_expires_at__lt=now).update(**fields):
                continue
            _flag_failed(conversation_id)
            turn = _set(Turn.objects.only(*FINISHED_TURN_FIELDS).get(pk=pk), fields)  # not the audit
            observers.turn_finished(turn, None)
            expired.append(turn)
    return expired


def turns_orphaned_queues() -> list[Any]:
    """Conversations with a queued turn no process is working on (a crash between the
    commit and the dispatch, or a dispatch lost with its process). Conversations locked
    right now are skipped (someone is claiming or posting there), and with several
    processes sweeping at once SKIP LOCKED hands each a different batch."""
    cutoff = timezone.now() - timedelta(seconds=platform_setting("ORPHAN_GRACE_SECONDS"))
    queued = Turn.objects.filter(conversation_id=OuterRef("pk"), status=TurnStatus.QUEUED, created_at__lt=cutoff)
    running = Turn.objects.filter(conversation_id=OuterRef("pk"), status=TurnStatus.RUNNING)
    orphans = Conversation.objects.filter(Exists(queued)).filter(~Exists(running)).order_by()
    return conversations_lock_batch(orphans, 100)
