"""The API's own writes: conversations created by an integration are recorded as its."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from conversations.api.models import ApiKey, ClientConversation
from conversations.models import Conversation
from conversations.services.conversations import conversation_create


def api_conversation_create(*, key: ApiKey | None, **fields: Any) -> Conversation:
    """`conversation_create`, plus, for an API key, the record that the key's
    integration owns the conversation (in the same transaction)."""
    with transaction.atomic():
        conversation = conversation_create(**fields)
        if key is not None:
            ClientConversation.objects.create(conversation=conversation, client_id=key.client_id, key=key)
    return conversation
