"""The turn lifecycle in the database: claim, lease, finish, fail, retry, cancel.

Turns of one conversation run one at a time, in the order they were queued, across
processes: `turn_claim_next` locks the conversation row, refuses while another turn of
it is running under a live lease, and moves the oldest queued turn to running with a
lease owned by the caller. The runner renews the lease (`turn_heartbeat`); every write
that ends a turn checks the caller still owns it, so a process that lost its lease (it
stalled, the sweeper failed its turn, a retry began) can never write a late answer.

Lock order: whoever locks both a conversation and one of its turns locks the
conversation first, so processes claiming and finishing turns of one conversation never
deadlock. The sweeps lock with SKIP LOCKED: a sweeper leaves a conversation someone is
working on to them, so sweepers in several processes never queue behind each other.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db import transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from conversations.agent.engine import engine
from conversations.agent.events import (
    message_event,
    turn_cancelled_event,
    turn_completed_event,
    turn_failed_event,
    turn_queued_event,
)
from conversations.conf import platform_setting
from conversations.errors import Conflict
from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError, TurnStatus, TurnTrigger
from conversations.services.items import items_append


def _lease_deadline() -> Any:
    return timezone.now() + timedelta(seconds=platform_setting("TURN_LEASE_SECONDS"))


def conversation_has_failed_turn(conversation_id: Any) -> bool:
    """True when some user message's latest attempt failed."""
    later = Turn.objects.filter(user_message=OuterRef("user_message"), attempt__gt=OuterRef("attempt"))
    return (
        Turn.objects.filter(conversation_id=conversation_id, status=TurnStatus.FAILED)
        .filter(~Exists(later))
        .exists()
    )


def _refresh_failed_flag(conversation_id: Any) -> None:
    Conversation.objects.filter(pk=conversation_id).update(
        has_failed_turn=conversation_has_failed_turn(conversation_id)
    )


def _fail_locked(turn: Turn, code: str, message: str) -> None:
    turn.status = TurnStatus.FAILED
    turn.error_code = code
    turn.error_message = message
    turn.finished_at = timezone.now()
    turn.lease_expires_at = None
    turn.save(update_fields=["status", "error_code", "error_message", "finished_at", "lease_expires_at"])
    _refresh_failed_flag(turn.conversation_id)
    engine.publish_on_commit(turn.conversation_id, turn_failed_event(turn))


def turn_claim_next(*, conversation_id: Any, owner: str) -> UUID | None:
    """Claim the conversation's oldest queued turn for `owner`, or return None when a
    turn of it is already running under a live lease, or nothing is queued."""
    now = timezone.now()
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conversation is None:
            return None
        running = list(
            Turn.objects.select_for_update().filter(
                conversation_id=conversation_id, status=TurnStatus.RUNNING
            )
        )
        for turn in running:
            if turn.lease_expires_at and turn.lease_expires_at < now:
                _fail_locked(turn, TurnError.INTERRUPTED, "The worker running this turn stopped.")
            else:
                return None
        turn = (
            Turn.objects.select_for_update()
            .filter(conversation_id=conversation_id, status=TurnStatus.QUEUED)
            .order_by("created_at")
            .first()
        )
        if turn is None:
            return None
        turn.status = TurnStatus.RUNNING
        turn.lease_owner = owner
        turn.lease_expires_at = _lease_deadline()
        turn.started_at = now
        turn.save(update_fields=["status", "lease_owner", "lease_expires_at", "started_at"])
        return turn.id


def turn_heartbeat(*, turn_id: Any, owner: str) -> str:
    """Renew the lease. Returns "ok", "cancel" (someone asked the turn to stop) or
    "lost" (the caller no longer owns the turn and must stop without writing)."""
    updated = Turn.objects.filter(
        pk=turn_id, status=TurnStatus.RUNNING, lease_owner=owner
    ).update(lease_expires_at=_lease_deadline())
    if not updated:
        return "lost"
    cancel = Turn.objects.filter(pk=turn_id).values_list("cancel_requested", flat=True).first()
    return "cancel" if cancel else "ok"


def _lock_conversation(conversation_id: Any) -> None:
    """Lock the conversation row before a turn of it (the lock order above).
    Precondition: inside a transaction."""
    list(Conversation.objects.select_for_update().filter(pk=conversation_id).values_list("pk"))


def _owned(turn_id: Any, owner: str) -> Turn | None:
    """Lock the turn (its conversation first) and return it if `owner` still runs it.
    Precondition: inside a transaction."""
    conversation_id = Turn.objects.filter(pk=turn_id).values_list("conversation_id", flat=True).first()
    if conversation_id is None:
        return None
    _lock_conversation(conversation_id)
    turn = Turn.objects.select_for_update().filter(pk=turn_id).first()
    if turn is None or turn.status != TurnStatus.RUNNING or turn.lease_owner != owner:
        return None
    return turn


_AUDIT_FIELDS = (
    "requests",
    "history",
    "history_budget",
    "history_tokens",
    "response_ids",
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
)


def _apply_audit(turn: Turn, audit: dict[str, Any]) -> list[str]:
    fields = [name for name in _AUDIT_FIELDS if name in audit]
    for name in fields:
        setattr(turn, name, audit[name])
    return fields


def _add_totals(conversation_id: Any, audit: dict[str, Any]) -> None:
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    for name in ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"):
        setattr(conversation, name, getattr(conversation, name) + int(audit.get(name, 0)))
    conversation.cost += Decimal(str(audit.get("cost", 0)))
    conversation.save(
        update_fields=["input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost", "updated_at"]
    )


def turn_complete(
    *, turn_id: Any, owner: str, items: list[dict[str, Any]], audit: dict[str, Any]
) -> list[Message] | None:
    """Store the turn's items (function calls, outputs, the answer) and complete it,
    atomically. Returns None, writing nothing, if the caller lost the turn."""
    with transaction.atomic():
        turn = _owned(turn_id, owner)
        if turn is None:
            return None
        conversation = Conversation.objects.get(pk=turn.conversation_id)
        messages = items_append(
            conversation=conversation,
            items=[{**item, "turn": turn} for item in items],
            model=audit.get("model") or turn.model,
        )
        turn.status = TurnStatus.COMPLETED
        turn.finished_at = timezone.now()
        turn.lease_expires_at = None
        fields = _apply_audit(turn, audit)
        turn.save(update_fields=["status", "finished_at", "lease_expires_at", *fields])
        _add_totals(turn.conversation_id, audit)
        _refresh_failed_flag(turn.conversation_id)
        for message in messages:
            engine.publish_on_commit(turn.conversation_id, message_event(message))
        answer = [m for m in messages if m.kind == MessageKind.ASSISTANT]
        engine.publish_on_commit(
            turn.conversation_id, turn_completed_event(turn, message_seq=answer[-1].seq if answer else None)
        )
    return messages


def turn_fail(*, turn_id: Any, owner: str, code: str, message: str, audit: dict[str, Any]) -> bool:
    """Fail the turn, keeping its audit (including any partial text, which is never
    stored as an answer). False if the caller lost the turn."""
    with transaction.atomic():
        turn = _owned(turn_id, owner)
        if turn is None:
            return False
        fields = _apply_audit(turn, audit)
        turn.save(update_fields=fields) if fields else None
        _add_totals(turn.conversation_id, audit)
        _fail_locked(turn, code, message[:2000])
    return True


def turn_mark_cancelled(*, turn: Turn, reason: str, audit: dict[str, Any] | None = None) -> None:
    """Precondition: inside a transaction holding the turn (queued, or running and owned)."""
    turn.status = TurnStatus.CANCELLED
    turn.error_message = reason
    turn.finished_at = timezone.now()
    turn.lease_expires_at = None
    fields = _apply_audit(turn, audit or {})
    turn.save(update_fields=["status", "error_message", "finished_at", "lease_expires_at", *fields])
    engine.publish_on_commit(turn.conversation_id, turn_cancelled_event(turn))


def turn_finish_cancelled(*, turn_id: Any, owner: str, audit: dict[str, Any]) -> bool:
    with transaction.atomic():
        turn = _owned(turn_id, owner)
        if turn is None:
            return False
        turn_mark_cancelled(turn=turn, reason="Cancelled while running.", audit=audit)
        _add_totals(turn.conversation_id, audit)
    return True


def _queue_attempt(*, user_message: Message, trigger: str, actor: Any, retry_of: Turn | None) -> Turn:
    attempts = Turn.objects.filter(user_message=user_message).aggregate(top=Max("attempt"))["top"] or 0
    conversation = user_message.conversation
    turn = Turn.objects.create(
        conversation=conversation,
        user_message=user_message,
        attempt=attempts + 1,
        retry_of=retry_of,
        trigger=trigger,
        triggered_by=actor if getattr(actor, "pk", None) else None,
        agent=conversation.agent,
        model=conversation.agent.model or platform_setting("DEFAULT_MODEL"),
    )
    Conversation.objects.filter(pk=conversation.pk).update(turn_count=conversation.turn_count + 1)
    engine.publish_on_commit(conversation.pk, turn_queued_event(turn))
    engine.dispatch_on_commit(conversation.pk)
    return turn


def turn_retry(*, turn: Turn, actor: Any = None, trigger: str = TurnTrigger.API_RETRY) -> Turn:
    """Queue a new attempt for the failed or cancelled turn's user message. Every attempt
    stays in the audit. Only the latest attempt can be retried, and not while the AI is
    paused (a person is answering)."""
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update(of=("self",)).select_related("agent").get(
            pk=turn.conversation_id
        )
        current = Turn.objects.select_for_update().get(pk=turn.pk)
        if current.status not in (TurnStatus.FAILED, TurnStatus.CANCELLED):
            raise Conflict(f"Only a failed or cancelled turn can be retried; this one is {current.status}.", code="not_retryable")
        if Turn.objects.filter(user_message_id=current.user_message_id, attempt__gt=current.attempt).exists():
            raise Conflict("A newer attempt for this message exists.", code="not_latest_attempt")
        if conversation.ai_paused:
            raise Conflict("The AI is paused for this conversation; hand it back first.", code="ai_paused")
        current.user_message.conversation = conversation
        new = _queue_attempt(user_message=current.user_message, trigger=trigger, actor=actor, retry_of=current)
        if getattr(actor, "pk", None):
            StaffAction.objects.create(
                actor=actor, conversation=conversation, turn=new, action="retry",
                detail={"retry_of": str(current.pk), "attempt": new.attempt},
            )
    return new


def turn_cancel(*, turn: Turn, actor: Any = None) -> Turn:
    """Cancel a queued turn now, or ask a running one to stop at its next step."""
    with transaction.atomic():
        _lock_conversation(turn.conversation_id)
        current = Turn.objects.select_for_update().get(pk=turn.pk)
        if current.status == TurnStatus.QUEUED:
            turn_mark_cancelled(turn=current, reason="Cancelled before it started.")
        elif current.status == TurnStatus.RUNNING:
            current.cancel_requested = True
            current.save(update_fields=["cancel_requested"])
        else:
            raise Conflict(f"The turn already finished ({current.status}).", code="turn_finished")
        if getattr(actor, "pk", None):
            StaffAction.objects.create(
                actor=actor, conversation_id=current.conversation_id, turn=current, action="cancel"
            )
    return current


def turn_queue_for_unanswered(*, conversation: Conversation, trigger: str, actor: Any = None) -> Turn | None:
    """Queue a turn for the customer's last message if nothing answered it yet.
    Precondition: inside a transaction holding the conversation row."""
    last = (
        Message.objects.filter(
            conversation=conversation,
            kind__in=[MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF],
        )
        .order_by("-seq")
        .first()
    )
    if last is None or last.kind != MessageKind.USER:
        return None
    if Turn.objects.filter(user_message=last, status__in=[TurnStatus.QUEUED, TurnStatus.RUNNING]).exists():
        return None
    last.conversation = conversation
    return _queue_attempt(user_message=last, trigger=trigger, actor=actor, retry_of=None)


def turns_expire_leases() -> list[Turn]:
    """Fail running turns whose lease expired (their worker died). Returns them.
    A conversation locked by someone else is skipped: its claim fails the turn itself,
    or the next sweep does."""
    expired = []
    now = timezone.now()
    candidates = (
        Turn.objects.filter(status=TurnStatus.RUNNING, lease_expires_at__lt=now)
        .order_by()
        .values_list("pk", "conversation_id")[:200]
    )
    for pk, conversation_id in list(candidates):
        with transaction.atomic():
            if not Conversation.objects.select_for_update(skip_locked=True).filter(pk=conversation_id).exists():
                continue
            turn = Turn.objects.select_for_update(skip_locked=True).filter(
                pk=pk, status=TurnStatus.RUNNING, lease_expires_at__lt=now
            ).first()
            if turn is None:
                continue
            turn.status = TurnStatus.FAILED
            turn.error_code = TurnError.INTERRUPTED
            turn.error_message = "The worker running this turn stopped before it finished."
            turn.finished_at = now
            turn.lease_expires_at = None
            turn.save(update_fields=["status", "error_code", "error_message", "finished_at", "lease_expires_at"])
            _refresh_failed_flag(turn.conversation_id)
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
    with transaction.atomic():
        return list(
            Conversation.objects.select_for_update(skip_locked=True)
            .filter(Exists(queued))
            .filter(~Exists(running))
            .order_by()
            .values_list("pk", flat=True)[:100]
        )
