"""Plain-dict shapes of messages and turns shared by every door (events, API, widget).

One shape per object keeps the websocket, the SSE stream and the REST API identical.
"""

from __future__ import annotations

from typing import Any

from conversations.models import Conversation, Message, Turn


def message_to_dict(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": message.pk,
        "conversation": str(message.conversation_id),
        "seq": message.seq,
        "kind": message.kind,
        "text": message.text,
        "client_id": message.client_id or None,
        "turn": str(message.turn_id) if message.turn_id else None,
        "created_at": message.created_at.isoformat(),
        "metadata": message.metadata or {},
    }
    if message.kind in ("function_call", "function_output"):
        data["call_id"] = message.call_id
        data["tool_name"] = message.tool_name
    if message.kind == "function_call":
        data["arguments"] = message.tool_arguments
    return data


def turn_summary(turn: Turn) -> dict[str, Any]:
    """What a customer may see of a turn: status and error, not the audit."""
    return {
        "id": str(turn.id),
        "conversation": str(turn.conversation_id),
        "user_message_seq": turn.user_message.seq if turn.user_message_id else None,
        "status": turn.status,
        "attempt": turn.attempt,
        "model": turn.model,
        "error_code": turn.error_code or None,
        "error": turn.error_message or None,
        "created_at": turn.created_at.isoformat(),
        "finished_at": turn.finished_at.isoformat() if turn.finished_at else None,
    }


def conversation_state(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": str(conversation.id),
        "status": conversation.status,
        "ai_paused": conversation.ai_paused,
        "agent": conversation.agent_id,
        "channel": conversation.channel,
        "last_seq": conversation.next_seq - 1,
        "resolution": conversation.resolution,
    }
