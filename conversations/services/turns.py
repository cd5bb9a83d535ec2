"""The turn commands the doors and the services call: queue, retry, cancel.

Each takes the acting principal as `actor` where a person or client can ask for it, and
refuses what it may not do (`conversations.authorization`). Rows are locked through
`locks.conversation_lock` (conversation, then turn). What the engine does with a turn
once it is queued (claim, lease, finish) is in `leases`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from conversations import observers
from conversations.agent.agents import agent_cached
from conversations.agent.events import turn_cancelled_event, turn_queued_event
from conversations.authorization import Action, Actor, authorize_turn
from conversations.conf import platform_setting
from conversations.errors import Conflict
from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus, TurnTrigger
from conversations.services.engine_port import dispatch_on_commit, interrupt_on_commit, publish_on_commit
from conversations.services.locks import conversation_lock
from conversations.services.prepared import rows_insert

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def turn_mark_cancelled(*, turn: Turn, reason: str) -> None:
    """Cancel a queued turn. Precondition: inside a transaction holding it."""
    turn.status = TurnStatus.CANCELLED
    turn.error_message = reason
    turn.finished_at = timezone.now()
    turn.lease_expires_at = None
    turn.save(update_fields=["status", "error_message", "finished_at", "lease_expires_at"])
    observers.turn_finished(turn, None)
    publish_on_commit(turn.conversation_id, turn_cancelled_event(turn))


def turn_queue(
    *,
    conversation: Conversation,
    user_message: Message,
    trigger: str = TurnTrigger.CUSTOMER,
    actor: User | None = None,
    retry_of: Turn | None = None,
    attempt: int | None = None,
) -> Turn:
    """Queue a turn answering `user_message` and dispatch it on commit.

    Precondition: inside a transaction holding `conversation` locked.
    Bumps `conversation.turn_count` in memory; the caller saves it."""
    if attempt is None:
        attempt = (Turn.objects.filter(user_message=user_message).aggregate(top=Max("attempt"))["top"] or 0) + 1
    agent = agent_cached(conversation.agent_id)
    turn = Turn(
        conversation=conversation,
        user_message=user_message,
        attempt=attempt,
        retry_of=retry_of,
        trigger=trigger,
        triggered_by=actor if getattr(actor, "pk", None) else None,
        agent=agent,
        model=agent.model or platform_setting("DEFAULT_MODEL"),
    )
    rows_insert([turn])  # Turn.objects.create's INSERT, without building it each time
    conversation.turn_count += 1
    publish_on_commit(conversation.pk, turn_queued_event(turn))
    dispatch_on_commit(conversation.pk)
    return turn


def turn_retry(*, turn: Turn, actor: Actor = None, trigger: str = TurnTrigger.API_RETRY) -> Turn:
    """Queue a new attempt for the failed or cancelled turn's user message. Every attempt
    stays in the audit. Only the latest attempt can be retried, and not while the AI is
    paused (a person is answering). `actor` is the acting principal
    (`conversations.authorization`); refused unless it may retry here."""
    actor = authorize_turn(actor, Action.RETRY, turn).staff_user
    with transaction.atomic():
        conversation, current = conversation_lock(turn.conversation_id, turn_id=turn.pk, with_agent=True)
        if current.status not in (TurnStatus.FAILED, TurnStatus.CANCELLED):
            raise Conflict(f"Only a failed or cancelled turn can be retried; this one is {current.status}.", code="not_retryable")
        if Turn.objects.filter(user_message_id=current.user_message_id, attempt__gt=current.attempt).exists():
            raise Conflict("A newer attempt for this message exists.", code="not_latest_attempt")
        if conversation.ai_paused:
            raise Conflict("The AI is paused for this conversation; hand it back first.", code="ai_paused")
        new = turn_queue(
            conversation=conversation, user_message=current.user_message, trigger=trigger, actor=actor,
            retry_of=current,
        )
        conversation.save(update_fields=["turn_count"])
        if getattr(actor, "pk", None):
            StaffAction.objects.create(
                actor=actor, conversation=conversation, turn=new, action="retry",
                detail={"retry_of": str(current.pk), "attempt": new.attempt},
            )
    return new


def turn_cancel(*, turn: Turn, actor: Actor = None) -> Turn:
    """Cancel a queued turn now, or stop a running one: at once when this process runs
    it, at its next lease renewal when another does. `actor` is the acting principal
    (`conversations.authorization`); refused unless it may cancel here."""
    actor = authorize_turn(actor, Action.CANCEL, turn).staff_user
    with transaction.atomic():
        _conversation, current = conversation_lock(turn.conversation_id, turn_id=turn.pk)
        if current.status == TurnStatus.QUEUED:
            turn_mark_cancelled(turn=current, reason="Cancelled before it started.")
        elif current.status == TurnStatus.RUNNING:
            current.cancel_requested = True
            current.save(update_fields=["cancel_requested"])
            interrupt_on_commit(current.pk)
        else:
            raise Conflict(f"The turn already finished ({current.status}).", code="turn_finished")
        if getattr(actor, "pk", None):
            StaffAction.objects.create(
                actor=actor, conversation_id=current.conversation_id, turn=current, action="cancel"
            )
    return current


def turn_queue_for_unanswered(*, conversation: Conversation, trigger: str, actor: User | None = None) -> Turn | None:
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
    turn = turn_queue(conversation=conversation, user_message=last, trigger=trigger, actor=actor)
    conversation.save(update_fields=["turn_count"])
    return turn


