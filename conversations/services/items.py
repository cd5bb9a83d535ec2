"""Appending items to a conversation: the one place a `seq` is allocated.

`item_append` must run inside a transaction. It locks the conversation row, takes
`next_seq`, and bumps the denormalised counters, so seqs are strictly increasing and,
because a rolled-back transaction also rolls back the counter, gap-free as clients see
them. Every writer (customer messages, the turn runner, staff, imports) goes through it.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.agent.history import default_retriever
from conversations.agent.tokens import count_for_model
from conversations.models import Conversation, Message
from conversations.models.message import MessageKind

_PREVIEW_KINDS = (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF)


def conversation_lock(conversation_id: Any) -> Conversation:
    """Lock and return the conversation row (SELECT ... FOR UPDATE where supported).
    Only that row: `of=("self",)` keeps the joined agent row unlocked, or every
    conversation of an agent would queue behind each other on PostgreSQL."""
    return Conversation.objects.select_for_update(of=("self",)).select_related("agent").get(pk=conversation_id)


def item_token_count(*, kind: str, text: str = "", arguments: str = "", model: str) -> int:
    return count_for_model(text + arguments, model) if (text or arguments) else 0


def items_append(
    *, conversation: Conversation, items: list[dict[str, Any]], model: str | None = None
) -> list[Message]:
    """Append several items in order under one lock. Each dict holds Message fields.

    Precondition: inside `transaction.atomic()`; `conversation` should be the locked row
    from `conversation_lock` (it is re-locked otherwise).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("items_append must run inside a transaction")
    locked = conversation_lock(conversation.pk)
    model = model or locked.agent.model or "gpt-4o"
    now = timezone.now()
    messages = []
    for fields in items:
        fields = dict(fields)
        fields.setdefault("created_at", now)
        if "token_count" not in fields:
            fields["token_count"] = item_token_count(
                kind=fields["kind"],
                text=fields.get("text", ""),
                arguments=fields.get("tool_arguments", ""),
                model=model,
            )
        messages.append(Message(conversation=locked, seq=locked.next_seq, **fields))
        locked.next_seq += 1
    Message.objects.bulk_create(messages)
    index = getattr(default_retriever(), "index", None)
    if index is not None:
        # Same transaction: the retrieval index never disagrees with the messages.
        index(messages)
    locked.message_count += len(messages)
    locked.last_message_at = max(m.created_at for m in messages)
    previews = [m for m in messages if m.kind in _PREVIEW_KINDS]
    if previews:
        locked.last_message_preview = previews[-1].text[:200]
    locked.save(
        update_fields=[
            "next_seq",
            "message_count",
            "last_message_at",
            "last_message_preview",
            "updated_at",
        ]
    )
    conversation.next_seq = locked.next_seq
    return messages


def item_append(*, conversation: Conversation, model: str | None = None, **fields: Any) -> Message:
    return items_append(conversation=conversation, items=[fields], model=model)[0]
