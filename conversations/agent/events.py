"""Events the engine publishes about a conversation, and how they reach subscribers.

The Channels layer delivers at most once, so an event is only a fast hint: the database
is the truth, and stored items carry their `seq` so a client that missed frames asks
for everything after the last `seq` it saw. Every event carries `conversation` and,
when it belongs to a turn, `turn`. Subscribers (the websocket consumer, the SSE stream,
the admin's live view) join `group_name(conversation_id)` and receive messages of type
`conversation.event` whose `event` key holds one of the dicts built here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from conversations.presenters import conversation_state, message_to_dict

CHANNEL_MESSAGE_TYPE = "conversation.event"


def group_name(conversation_id: UUID | str) -> str:
    return f"conversation.{conversation_id}"


def message_event(message: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "conversation": str(message.conversation_id),
        "turn": str(message.turn_id) if message.turn_id else None,
        "seq": message.seq,
        "message": message_to_dict(message),
    }


def turn_queued_event(turn: Any) -> dict[str, Any]:
    return {
        "type": "turn.queued",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "attempt": turn.attempt,
    }


def turn_started_event(turn: Any, *, model_label: str) -> dict[str, Any]:
    return {
        "type": "turn.started",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "attempt": turn.attempt,
        "model": turn.model,
        "model_label": model_label,
    }


def text_delta_event(conversation_id: str, turn_id: str, delta: str) -> dict[str, Any]:
    return {"type": "text.delta", "conversation": conversation_id, "turn": turn_id, "delta": delta}


def commentary_event(conversation_id: str, turn_id: str, delta: str) -> dict[str, Any]:
    """Text of a `commentary` message ("Let me look that up"): progress, never the answer."""
    return {"type": "turn.commentary", "conversation": conversation_id, "turn": turn_id, "delta": delta}


def tool_started_event(
    conversation_id: str, turn_id: str, *, call_id: str, name: str, activity: str
) -> dict[str, Any]:
    return {
        "type": "tool.started",
        "conversation": conversation_id,
        "turn": turn_id,
        "call_id": call_id,
        "name": name,
        "activity": activity,
    }


def tool_finished_event(
    conversation_id: str, turn_id: str, *, call_id: str, name: str, ok: bool
) -> dict[str, Any]:
    return {
        "type": "tool.finished",
        "conversation": conversation_id,
        "turn": turn_id,
        "call_id": call_id,
        "name": name,
        "ok": ok,
    }


def turn_completed_event(turn: Any, *, message_seq: int | None) -> dict[str, Any]:
    return {
        "type": "turn.completed",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "message_seq": message_seq,
    }


def turn_failed_event(turn: Any) -> dict[str, Any]:
    return {
        "type": "turn.failed",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "error_code": turn.error_code,
        "error": turn.error_message,
        "retryable": True,
    }


def turn_cancelled_event(turn: Any) -> dict[str, Any]:
    return {"type": "turn.cancelled", "conversation": str(turn.conversation_id), "turn": str(turn.id)}


def conversation_updated_event(conversation: Any) -> dict[str, Any]:
    return {"type": "conversation.updated", "conversation": str(conversation.id), **{
        k: v for k, v in conversation_state(conversation).items() if k != "id"
    }}
