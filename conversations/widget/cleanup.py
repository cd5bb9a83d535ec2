"""Removing widget conversations nobody ever wrote in.

The widget creates a conversation only when the visitor first sends something or asks
for a person, so empty ones are rare: a visitor whose first message never arrived (tab
closed mid-send), or rows left from before that rule. `manage.py widget_prune_empty`
calls this on a schedule (docs/widget.md#cleaning-up-empty-conversations).
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from conversations.models import Conversation
from conversations.models.conversation import Channel, Status


def empty_widget_conversations_delete(*, older_than: timedelta, dry_run: bool = False) -> int:
    """Delete widget conversations created more than `older_than` ago that hold no item
    (no seq was ever allocated), are still open and were never handed to staff; return
    how many. Re-checked under the delete, so a conversation written in meanwhile stays."""
    empty = Conversation.objects.filter(
        channel=Channel.WIDGET,
        status=Status.OPEN,
        ai_paused=False,
        next_seq=1,
        created_at__lt=timezone.now() - older_than,
    )
    if dry_run:
        return empty.count()
    with transaction.atomic():
        deleted, by_model = empty.delete()
    return by_model.get(Conversation._meta.label, 0)
