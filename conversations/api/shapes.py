"""The JSON the API returns, built from the shared presenters.

Messages are exactly `presenters.message_to_dict` (the websocket and SSE shape); for
visitors, `customer_view.customer_message` of it, as the widget websocket shows them
(no raw tool output). Turns are `presenters.turn_summary` (for visitors without the
provider's error text) plus how the turn came about and, for staff and API keys with
the `audit` scope, the full audit. Conversations show usage and cost to those
callers only. `conversations.api.schema_shapes` documents these shapes in the OpenAPI
schema, and the tests validate real responses against it.
"""

from __future__ import annotations

from typing import Any

from conversations.customer_view import (
    customer_conversation,
    customer_message,
    customer_sources,
    customer_turn,
)
from conversations.models import Conversation, CsatRating, Message, Turn
from conversations.presenters import message_to_dict, turn_summary


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def conversation_dict(conversation: Conversation, *, internal: bool, customer: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(conversation.id),
        "agent": conversation.agent_id,
        "customer_kind": conversation.customer_kind,
        "customer_id": conversation.customer_id,
        "customer_email": conversation.customer_email,
        "customer_name": conversation.customer_name,
        "channel": conversation.channel,
        "status": conversation.status,
        "ai_paused": conversation.ai_paused,
        "metadata": conversation.metadata or {},
        "message_count": conversation.message_count,
        "last_seq": conversation.next_seq - 1,
        "last_message_preview": conversation.last_message_preview,
        "last_message_at": _iso(conversation.last_message_at),
        "has_failed_turn": conversation.has_failed_turn,
        "turn_count": conversation.turn_count,
        "created_at": _iso(conversation.created_at),
        "updated_at": _iso(conversation.updated_at),
        "usage": None,
    }
    if internal:
        data["usage"] = {
            "input_tokens": conversation.input_tokens,
            "cached_tokens": conversation.cached_tokens,
            "output_tokens": conversation.output_tokens,
            "reasoning_tokens": conversation.reasoning_tokens,
            "cost": str(conversation.cost),
        }
    return customer_conversation(data) if customer else data


def rating_dict(rating: CsatRating) -> dict[str, Any]:
    """A CSAT rating as its customer sent it (who handled it is for staff: the dashboard)."""
    return {
        "conversation": str(rating.conversation_id),
        "resolution": rating.resolution,
        "score": rating.score,
        "comment": rating.comment,
        "created_at": _iso(rating.created_at),
    }


def turn_audit(turn: Turn) -> dict[str, Any]:
    return {
        "requests": turn.requests,
        "history": turn.history,
        "history_budget": turn.history_budget,
        "history_tokens": turn.history_tokens,
        "response_ids": turn.response_ids,
        "partial_text": turn.partial_text,
        "redactions": turn.redactions or None,
        "guardrails": turn.guardrails,
        "usage": {
            "input_tokens": turn.input_tokens,
            "cached_tokens": turn.cached_tokens,
            "output_tokens": turn.output_tokens,
            "reasoning_tokens": turn.reasoning_tokens,
        },
        "cost": str(turn.cost),
        "tool_rounds": turn.tool_rounds,
        "time_to_first_token_ms": turn.time_to_first_token_ms,
        "latency_ms": turn.latency_ms,
        "started_at": _iso(turn.started_at),
        "triggered_by": turn.triggered_by.get_username() if turn.triggered_by else None,
    }


def message_dict(message: Message, *, customer: bool = False) -> dict[str, Any] | None:
    """The message as the caller may see it; None when a visitor never sees it (notes)."""
    data = message_to_dict(message)
    return customer_message(data, sources=customer_sources(data)) if customer else data


def turn_dict(turn: Turn, *, internal: bool, customer: bool = False) -> dict[str, Any]:
    data = customer_turn(turn_summary(turn)) if customer else turn_summary(turn)
    data["trigger"] = turn.trigger
    data["retry_of"] = str(turn.retry_of_id) if turn.retry_of_id else None
    data["cancel_requested"] = turn.cancel_requested
    data["audit"] = turn_audit(turn) if internal else None
    return data


def post_result_dict(
    *, message: Message, turn: Turn | None, created: bool, answer: list[Message], internal: bool,
    customer: bool = False,
) -> dict[str, Any]:
    shown = [message_dict(m, customer=customer) for m in answer]
    return {
        "message": message_dict(message, customer=customer),
        "turn": turn_dict(turn, internal=internal, customer=customer) if turn is not None else None,
        "created": created,
        "answer": [m for m in shown if m is not None],
    }
