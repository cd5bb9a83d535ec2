"""Answering an endpoint that queues a turn (post a message, retry a turn) in the mode
the client chose: the stored result now (poll the turn later), after `?wait=N`
seconds at most, or as Server-Sent Events with `Accept: text/event-stream`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from rest_framework.response import Response

from conversations.agent.events import message_event
from conversations.api.shapes import post_result_dict
from conversations.api.streaming import (
    Subscription,
    event_stream_response,
    follow_turn,
    stream_max_seconds,
    waited_json_response,
)
from conversations.customer_view import customer_event
from conversations.models import Message, Turn


def _answer_items(turn: Turn | None) -> list[Message]:
    if turn is None:
        return []
    return list(Message.objects.filter(turn=turn).order_by("seq"))


async def _customer_events(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """A visitor's stream: each event as the widget websocket would show it."""
    async for event in events:
        shown = customer_event(event)  # keep-alives pass through as they are
        if shown is not None:
            yield shown


def subscribe_if(mode: str, conversation_id: Any) -> Subscription | None:
    """Subscribe before the write when the answer will follow the turn."""
    return Subscription(conversation_id).open_sync() if mode != "poll" else None


def run_subscribed(subscription: Subscription | None, write: Callable[[], Any]) -> Any:
    try:
        return write()
    except BaseException:
        if subscription is not None:
            subscription.close_sync()
        raise


def answer(
    *,
    mode: str,
    wait: int,
    subscription: Subscription | None,
    message: Message,
    turn: Turn | None,
    created: bool,
    internal: bool,
    after_seq: int,
    status: int,
    replay: bool = False,
    customer: bool = False,
) -> Any:
    """The response for a write that stored `message` and queued `turn` (or found them,
    when `replay`). `customer`: the caller is a visitor (`conversations.customer_view`)."""
    if mode == "poll" or subscription is None:
        finished = turn is not None and turn.is_finished
        body = post_result_dict(
            message=message, turn=turn, created=created,
            answer=_answer_items(turn) if finished else [], internal=internal, customer=customer,
        )
        return Response(body, status=status)
    conversation_id = str(message.conversation_id)
    turn_id = str(turn.pk) if turn is not None else None
    if mode == "stream":
        first = [message_event(message)] if after_seq < message.seq else []
        events = follow_turn(
            subscription, conversation_id=conversation_id, turn_id=turn_id, after_seq=after_seq,
            internal=internal, first=first, max_seconds=stream_max_seconds(), check_first=replay,
        )
        if customer:
            events = _customer_events(events)
        response = event_stream_response(subscription, events)
        # Which turn the stream follows (the stream carries every event of the conversation).
        response["X-Turn-Id"] = turn_id or ""
        response["X-Message-Seq"] = str(message.seq)
        return response

    def body() -> dict[str, Any]:
        current = Turn.objects.select_related("user_message", "triggered_by").get(pk=turn.pk) if turn else None
        return post_result_dict(
            message=message, turn=current, created=created, answer=_answer_items(current), internal=internal,
            customer=customer,
        )

    events = follow_turn(
        subscription, conversation_id=conversation_id, turn_id=turn_id, after_seq=after_seq,
        internal=internal, first=[], max_seconds=wait, check_first=replay,
    )
    return waited_json_response(subscription, events, body, status=status)
