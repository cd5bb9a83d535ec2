"""Creating conversations and changing their state: status, handoff, take over, handback.

The state changes take the acting principal as `actor` (a `Principal`, a staff user, or
None for the platform itself) and refuse what it may not do
(`conversations.authorization`), whichever door calls them."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.db import transaction

from conversations.agent.events import conversation_updated_event
from conversations.authorization import Action, Actor, authorize
from conversations.errors import InvalidInput, NotFound
from conversations.models import Agent, Conversation, StaffAction, Turn
from conversations.models.conversation import Channel, CustomerKind, Status
from conversations.models.turn import TurnStatus, TurnTrigger
from conversations.services.engine_port import interrupt_on_commit, publish_on_commit
from conversations.services.locks import conversation_lock
from conversations.services.storable import clean_metadata, text_problem
from conversations.services.turns import turn_mark_cancelled, turn_queue_for_unanswered

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def agent_default() -> Agent:
    agent = Agent.objects.filter(is_default=True).first() or Agent.objects.order_by("pk").first()
    if agent is None:
        raise NotFound("No agent is configured. Run `python manage.py setup_demo`.")
    return agent


def conversation_create(
    *,
    agent: Agent | None = None,
    customer_id: str = "",
    customer_kind: str = CustomerKind.VISITOR,
    customer_email: str = "",
    customer_name: str = "",
    channel: str = Channel.API,
    metadata: dict[str, Any] | None = None,
) -> Conversation:
    """Start a conversation. An anonymous visitor gets a random customer id."""
    metadata = clean_metadata(metadata)
    for field, value in (("customer_id", customer_id), ("customer_email", customer_email),
                         ("customer_name", customer_name)):
        problem = text_problem(value) if isinstance(value, str) else "must be a string"
        if problem:
            raise InvalidInput(f"{field} {problem}.", fields={field: problem})
    if customer_kind not in CustomerKind.values:
        raise InvalidInput("Unknown customer kind.", fields={"customer_kind": "invalid"})
    if channel not in Channel.values:
        raise InvalidInput("Unknown channel.", fields={"channel": "invalid"})
    if not customer_id:
        if customer_kind == CustomerKind.USER:
            raise InvalidInput("customer_id is required.", fields={"customer_id": "required"})
        customer_id = f"visitor-{uuid.uuid4().hex[:12]}"
    return Conversation.objects.create(
        agent=agent or agent_default(),
        customer_id=customer_id[:255],
        customer_kind=customer_kind,
        customer_email=customer_email,
        customer_name=customer_name[:200],
        channel=channel,
        metadata=metadata,
    )


def _record(conversation: Conversation, actor: User | None, action: str, **detail: Any) -> None:
    if actor is not None:
        StaffAction.objects.create(
            actor=actor, conversation=conversation, action=action, detail=detail
        )


def _stop_ai_turns(conversation: Conversation) -> None:
    """Cancel queued turns and ask a running one to stop: a person is taking over."""
    turns = Turn.objects.filter(conversation=conversation)
    for turn in turns.filter(status=TurnStatus.QUEUED):
        turn_mark_cancelled(turn=turn, reason="A person took over the conversation.")
    running = list(turns.filter(status=TurnStatus.RUNNING).values_list("pk", flat=True))
    turns.filter(pk__in=running).update(cancel_requested=True)
    for turn_id in running:
        interrupt_on_commit(turn_id)


def conversation_handoff(
    *, conversation: Conversation, reason: str = "", actor: Actor = None, stop_running: bool = True
) -> Conversation:
    """Hand the conversation to staff: waiting on staff, AI paused.

    `stop_running=False` is for the `handoff_to_human` tool, called from inside the
    running turn, which must finish its own answer."""
    user = authorize(actor, Action.HANDOFF, conversation).staff_user
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        locked.status = Status.WAITING_ON_STAFF
        locked.ai_paused = True
        meta = dict(locked.metadata)
        if reason:
            meta["handoff_reason"] = reason[:500]
        locked.metadata = meta
        locked.save(update_fields=["status", "ai_paused", "metadata", "updated_at"])
        if stop_running:
            _stop_ai_turns(locked)
        _record(locked, user, "handoff", reason=reason)
        publish_on_commit(locked.pk, conversation_updated_event(locked))
    return locked


def conversation_take_over(*, conversation: Conversation, actor: Actor) -> Conversation:
    """A staff member pauses the AI to answer personally."""
    user = authorize(actor, Action.TAKE_OVER, conversation).staff_user
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        locked.ai_paused = True
        if locked.status == Status.WAITING_ON_STAFF:
            locked.status = Status.OPEN
        locked.save(update_fields=["ai_paused", "status", "updated_at"])
        _stop_ai_turns(locked)
        _record(locked, user, "take_over")
        publish_on_commit(locked.pk, conversation_updated_event(locked))
    return locked


def conversation_hand_back(*, conversation: Conversation, actor: Actor = None) -> Conversation:
    """Give the conversation back to the AI. If the customer's last word is still
    unanswered, a turn is queued for it."""
    user = authorize(actor, Action.HAND_BACK, conversation).staff_user
    with transaction.atomic():
        locked = conversation_lock(conversation.pk, with_agent=True)
        locked.ai_paused = False
        if locked.status == Status.WAITING_ON_STAFF:
            locked.status = Status.OPEN
        locked.save(update_fields=["ai_paused", "status", "updated_at"])
        _record(locked, user, "hand_back")
        turn_queue_for_unanswered(conversation=locked, trigger=TurnTrigger.HANDBACK, actor=user)
        publish_on_commit(locked.pk, conversation_updated_event(locked))
    return locked


def conversation_set_status(*, conversation: Conversation, status: str, actor: Actor = None) -> Conversation:
    """Resolve or reopen. Each resolution is numbered (`Conversation.resolution`), so
    the customer is asked to rate each once."""
    user = authorize(actor, Action.SET_STATUS, conversation).staff_user
    if status not in Status.values:
        raise InvalidInput(
            f"status must be one of {', '.join(Status.values)}.", fields={"status": "invalid"}
        )
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        if locked.status != status:
            locked.status = status
            if status == Status.RESOLVED:
                # A new resolution: the customer may rate it (`ratings.rating_add`).
                locked.resolution += 1
            locked.save(update_fields=["status", "resolution", "updated_at"])
            _record(locked, user, "resolve" if status == Status.RESOLVED else "reopen")
            publish_on_commit(locked.pk, conversation_updated_event(locked))
    return locked
