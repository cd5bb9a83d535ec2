"""Builders shared by the knowledge tests: conversations with stored items."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from conversations.models import Agent, Conversation, Message
from conversations.services.conversations import conversation_create
from conversations.services.items import items_append


def new_conversation() -> Conversation:
    if not Agent.objects.filter(is_default=True).exists():
        Agent.objects.create(name="Test agent", is_default=True, model="gpt-4.1-mini")
    return conversation_create(channel="api")


def append(conversation: Conversation, items: list[dict[str, Any]]) -> list[Message]:
    with transaction.atomic():
        return items_append(conversation=conversation, items=items, model="gpt-4.1-mini")


def exchange(user: str, assistant: str) -> list[dict[str, Any]]:
    return [{"kind": "user", "text": user}, {"kind": "assistant", "text": assistant}]


def tool_pair(call_id: str, name: str, arguments: str, output: str) -> list[dict[str, Any]]:
    return [
        {"kind": "function_call", "call_id": call_id, "tool_name": name, "tool_arguments": arguments},
        {"kind": "function_output", "call_id": call_id, "tool_name": name, "text": output},
    ]


FILLER = [
    ("Can you tell me about the weather where you are?", "I'm a support assistant, so I don't see the weather, but I hope it is nice."),
    ("What colours does the travel mug come in?", "The travel mug comes in black, white and sage green."),
    ("Is the grinder loud?", "The burr grinder runs at about 70 decibels, quieter than most blade grinders."),
    ("Do you have a loyalty programme?", "Yes, every purchase earns points you can redeem on later purchases."),
    ("How do I descale the kettle?", "Fill it with equal parts water and white vinegar, boil, rinse twice."),
    ("Which filter papers fit the dripper?", "Size 02 cone papers fit the ceramic dripper."),
]


def filler(count: int) -> list[dict[str, Any]]:
    """`count` harmless exchanges (2 items each) that mention none of the planted facts."""
    items: list[dict[str, Any]] = []
    for n in range(count):
        user, answer = FILLER[n % len(FILLER)]
        items += exchange(user, answer)
    return items
