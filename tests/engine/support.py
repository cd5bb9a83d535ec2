"""Small helpers shared by the engine tests."""

from __future__ import annotations

import asyncio
from typing import Any

from conversations.models import Conversation, Message, Turn
from conversations.services.messages import PostResult, message_post
from tests.conftest import wait_for, wait_turn_finished


def ask(conversation: Conversation, text: str, **kwargs: Any) -> PostResult:
    return message_post(conversation=conversation, text=text, **kwargs)


def answered(posted: PostResult, timeout: float = 15.0) -> Turn:
    """Wait for the posted message's turn to finish and return it."""
    assert posted.turn is not None, "no turn was queued"
    return wait_turn_finished(posted.turn.id, timeout=timeout)


def finished(turn: Turn, timeout: float = 15.0) -> Turn:
    """Wait for `turn` to finish and return it fresh from the database."""
    return wait_turn_finished(turn.pk, timeout=timeout)


def kinds(conversation: Conversation) -> list[str]:
    return list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("kind", flat=True))


def items_of(conversation: Conversation, kind: str) -> list[Message]:
    return list(Message.objects.filter(conversation=conversation, kind=kind).order_by("seq"))


def outputs_by_call(conversation: Conversation) -> dict[str, str]:
    return {m.call_id: m.text for m in items_of(conversation, "function_output")}


def wait_until(predicate: Any, timeout: float = 15.0) -> Any:
    return wait_for(predicate, timeout=timeout)


def engine_idle(timeout: float = 20.0) -> None:
    """Wait until no turn runs on the engine's loop (from a synchronous test)."""
    from conversations.agent.engine import engine

    loop = engine.loop
    if loop is not None and loop.is_running():
        asyncio.run_coroutine_threadsafe(engine.wait_idle(timeout), loop).result(timeout + 5)
