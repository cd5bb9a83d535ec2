"""Synthetic conversations, written fast with bulk_create, for the console's benchmark and
its query-count tests.

The rows look like the services write them: gap-free seqs and `next_seq`, the
denormalised counters the list reads, a turn per customer message (some failed, with no
answer after them), tool call/output pairs linked to their turn, staff replies and
notes. Timestamps are spread over past weeks so ordering and date filters have work to
do. This bypasses the services on purpose (they lock and publish per item); it must not
run while turns are running in the same process.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.models import Agent, Conversation, Message, Turn
from conversations.models.conversation import Channel, Status
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError, TurnStatus

# One "exchange" pattern; long conversations repeat it.
_PATTERN = (
    ("user", "Hi, where is my order {n}? My email is customer@example.com"),
    ("function_call", ""),
    ("function_output", ""),
    ("assistant", "Order {n} has shipped with UPS and should arrive in 2 days."),
    ("user", "Thanks! Can I change the delivery address for order {n}?"),
    ("assistant", "I can't change addresses myself; I'll ask a colleague to help."),
    ("note", "Customer wants an address change for {n}; check with the carrier."),
    ("staff", "Hello, this is Sam from support: I've asked UPS to reroute order {n}."),
    ("user", "Great, thank you so much."),
    ("assistant", "You're welcome! Anything else I can help with?"),
)


@contextlib.contextmanager
def explicit_timestamps() -> Iterator[None]:
    """Let bulk_create store the given created/updated times instead of "now"."""
    fields = [
        Conversation._meta.get_field("created_at"), Conversation._meta.get_field("updated_at"),
        Turn._meta.get_field("created_at"),
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for field in fields:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add


def _items(conversation: Conversation, count: int, start: Any, *, fail_last: bool) -> tuple[list[Message], list[Turn]]:
    """`count` items for the conversation (built, not saved), and the turns answering its
    customer messages; with `fail_last` the last item is a customer message whose turn failed."""
    messages: list[Message] = []
    turns: list[Turn] = []
    pending_user: Message | None = None
    turn: Turn | None = None
    for index in range(count):
        kind, template = _PATTERN[index % len(_PATTERN)]
        if fail_last and index == count - 1:
            kind, template = "user", "Is anybody there? Order {n} still hasn't arrived."
        n = 1000 + index // len(_PATTERN)
        created = start + timedelta(seconds=index * 7)
        message = Message(
            conversation=conversation, seq=index + 1, kind=kind, text=template.format(n=n),
            created_at=created, token_count=12,
        )
        if kind == "user":
            pending_user = message
            turn = None
        elif kind in ("function_call", "function_output", "assistant") and pending_user is not None:
            if turn is None:
                turn = _turn(conversation, pending_user, created, TurnStatus.COMPLETED)
                turns.append(turn)
            message.turn_id = turn.id
        if kind == "function_call":
            message.tool_name, message.call_id = "lookup_order", f"call_{index}"
            message.tool_arguments = json.dumps({"order_number": str(n), "email": "customer@example.com"})
        elif kind == "function_output":
            message.tool_name, message.call_id = "lookup_order", f"call_{index - 1}"
            message.text = json.dumps({"order_number": str(n), "status": "shipped", "carrier": "UPS"})
            message.metadata = {"ok": True}
        elif kind in ("staff", "note"):
            message.metadata = {"author_name": "Sam"}
        messages.append(message)
    if fail_last and pending_user is not None and turn is None:
        turns.append(_turn(conversation, pending_user, pending_user.created_at, TurnStatus.FAILED))
    return messages, turns


def _turn(conversation: Conversation, user_message: Message, created: Any, status: str) -> Turn:
    failed = status == TurnStatus.FAILED
    return Turn(
        id=uuid.uuid4(), conversation=conversation, user_message=user_message, agent_id=conversation.agent_id,
        model="offline-support-1", status=status, created_at=created, started_at=created,
        finished_at=created + timedelta(seconds=2), latency_ms=1800, time_to_first_token_ms=350,
        input_tokens=0 if failed else 420, output_tokens=0 if failed else 40,
        error_code=TurnError.PROVIDER_ERROR if failed else "",
        error_message="The AI provider answered HTTP 500: upstream overloaded" if failed else "",
        requests=[{"model": "offline-support-1", "input": [{"type": "message", "role": "user", "content": user_message.text}],
                   "store": False, "stream": True}],
        history=[{"message_id": None, "seq": user_message.seq, "kind": "user", "tokens": 16, "reason": "current", "score": None}],
    )


def _save(conversations: list[Conversation], per_conversation: list[tuple[list[Message], list[Turn]]]) -> None:
    with transaction.atomic(), explicit_timestamps():
        Conversation.objects.bulk_create(conversations, batch_size=1000)
        messages = [m for pair in per_conversation for m in pair[0]]
        Message.objects.bulk_create(messages, batch_size=2000)  # pks come back (RETURNING)
        turns = [t for pair in per_conversation for t in pair[1]]
        for turn in turns:
            turn.user_message_id = turn.user_message.pk
            if turn.history and turn.history[0].get("message_id") is None:
                turn.history[0]["message_id"] = turn.user_message.pk
        Turn.objects.bulk_create(turns, batch_size=2000)


def conversations_generate(
    *, agent: Agent, count: int, items_per_conversation: int = 4, prefix: str = "bench", batch: int = 2000,
    offset: int = 0,
) -> int:
    """Create `count` conversations of `items_per_conversation` items each. Every 10th has a
    failed turn, every 25th waits on staff, every 30th has the AI paused, every 40th is
    resolved. Returns how many were created."""
    now = timezone.now()
    for first in range(offset, offset + count, batch):
        conversations, per_conversation = [], []
        for i in range(first, min(first + batch, offset + count)):
            failed = i % 10 == 3
            start = now - timedelta(minutes=i * 3 + 5)
            status = Status.WAITING_ON_STAFF if i % 25 == 7 else Status.RESOLVED if i % 40 == 1 else Status.OPEN
            conversation = Conversation(
                agent=agent, customer_id=f"{prefix}-{i:07d}", customer_email=f"customer{i}@example.com",
                customer_name=f"Customer {i}", channel=[Channel.WIDGET, Channel.API, Channel.IMPORTED][i % 3],
                status=status, ai_paused=i % 30 == 11, has_failed_turn=failed, external_id=f"{prefix}-{i}",
                created_at=start, updated_at=start + timedelta(seconds=items_per_conversation * 7),
            )
            pair = _items(conversation, items_per_conversation, start, fail_last=failed)
            _summarise(conversation, *pair)
            conversations.append(conversation)
            per_conversation.append(pair)
        _save(conversations, per_conversation)
    return count


def conversation_long(*, agent: Agent, items: int, prefix: str = "bench-long", fail_last: bool = True) -> Conversation:
    """One conversation with `items` items (tool calls, notes, staff replies, turns)."""
    start = timezone.now() - timedelta(seconds=items * 7 + 60)
    conversation = Conversation(
        agent=agent, customer_id=f"{prefix}-{uuid.uuid4().hex[:8]}", customer_name="Long conversation",
        channel=Channel.WIDGET, has_failed_turn=fail_last, created_at=start,
        updated_at=start + timedelta(seconds=items * 7),
    )
    pair = _items(conversation, items, start, fail_last=fail_last)
    _summarise(conversation, *pair)
    _save([conversation], [pair])
    return conversation


def _summarise(conversation: Conversation, messages: list[Message], turns: list[Turn]) -> None:
    conversation.next_seq = len(messages) + 1
    conversation.message_count = len(messages)
    conversation.turn_count = len(turns)
    visible = [m for m in messages if m.kind in (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF)]
    conversation.last_message_preview = visible[-1].text[:200] if visible else ""
    conversation.last_message_at = messages[-1].created_at if messages else None
    conversation.input_tokens = sum(t.input_tokens for t in turns)
    conversation.output_tokens = sum(t.output_tokens for t in turns)
    conversation.cost = Decimal(conversation.input_tokens) * Decimal("0.0000004")
