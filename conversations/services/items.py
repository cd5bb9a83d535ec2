"""Appending items to a conversation: the one place a `seq` is allocated.

`item_append` must run inside a transaction. It locks the conversation row, takes
`next_seq`, and bumps the denormalised counters, so seqs are strictly increasing and,
because a rolled-back transaction also rolls back the counter, gap-free as clients see
them. Every writer (customer messages, the turn runner, staff, imports) goes through it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from conversations.agent.agents import agent_cached
from conversations.agent.history import default_retriever
from conversations.agent.tokens import count_for_model
from conversations.models import Conversation, Message
from conversations.models.message import MessageKind

_PREVIEW_KINDS = (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF)


def conversation_lock(conversation_id: UUID | str) -> Conversation:
    """Lock and return the conversation row (SELECT ... FOR UPDATE where supported).
    Its agent is not joined: read it with `agent_cached(row.agent_id)`."""
    return Conversation.objects.select_for_update().get(pk=conversation_id)


def item_token_count(*, kind: str, text: str = "", arguments: str = "", model: str) -> int:
    return count_for_model(text + arguments, model) if (text or arguments) else 0


# The conversation fields `items_append` changes; a caller passing `save=False` saves
# them together with its own changes in one UPDATE.
ITEM_COUNTER_FIELDS = ("next_seq", "message_count", "last_message_at", "last_message_preview", "updated_at")


def items_append(
    *,
    conversation: Conversation,
    items: list[dict[str, Any]],
    model: str | None = None,
    locked: bool = False,
    save: bool = True,
) -> list[Message]:
    """Append several items in order. Each dict holds Message fields; a missing
    `token_count` is counted here with the model's encoding.

    Precondition: inside `transaction.atomic()`. Pass `locked=True` only when
    `conversation` is the row `conversation_lock` returned in this same transaction
    (its counters are then current); otherwise the row is locked and re-read here.
    With `save=False` the caller must save `ITEM_COUNTER_FIELDS` before committing.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("items_append must run inside a transaction")
    row = conversation if locked else conversation_lock(conversation.pk)
    model = model or agent_cached(row.agent_id).model or "gpt-4o"
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
        messages.append(Message(conversation=row, seq=row.next_seq, **fields))
        row.next_seq += 1
    Message.objects.bulk_create(messages)
    index = getattr(default_retriever(), "index", None)
    if index is not None:
        # Same transaction: the retrieval index never disagrees with the messages.
        index(messages)
    row.message_count += len(messages)
    row.last_message_at = max(m.created_at for m in messages)
    previews = [m for m in messages if m.kind in _PREVIEW_KINDS]
    if previews:
        row.last_message_preview = previews[-1].text[:200]
    if save:
        row.save(update_fields=list(ITEM_COUNTER_FIELDS))
    if row is not conversation:
        for name in ITEM_COUNTER_FIELDS:
            setattr(conversation, name, getattr(row, name))
    return messages


def item_append(
    *, conversation: Conversation, model: str | None = None, locked: bool = False, save: bool = True,
    **fields: Any,
) -> Message:
    return items_append(conversation=conversation, items=[fields], model=model, locked=locked, save=save)[0]
