"""Answering an endpoint that queues a turn (post a message, retry a turn) in the mode
the client chose: the stored result now (poll the turn later), after `?wait=N`
seconds at most, or as Server-Sent Events with `Accept: text/event-stream`.

`answering_view` is the URL entry of such an endpoint. A client that follows its turn
(`?wait=` or SSE) may wait for a minute, and many may wait at once, so it must hold
neither a thread nor a database connection meanwhile: the (synchronous, DRF) view runs
as one job on the engine's database threads, which return their connection when the
job ends, and the response it returns is an async stream that the server's event loop
serves, reading the database in short `engine.db` jobs of its own. Everything else
(listing, polling posts) runs the view the way Django runs any synchronous view.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBase
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.agent.engine import engine
from conversations.agent.events import message_event
from conversations.api.shapes import post_result_dict
from conversations.api.streaming import (
    Subscription,
    event_stream_response,
    follow_turn,
    stream_max_seconds,
    waited_json_response,
)
from conversations.customer_view import customer_event, customer_sources
from conversations.models import Message, Turn


def _answer_items(turn: Turn | None) -> list[Message]:
    if turn is None:
        return []
    return list(Message.objects.filter(turn=turn).order_by("seq"))


async def _customer_events(events: AsyncIterator[Mapping[str, Any]]) -> AsyncIterator[Mapping[str, Any]]:
    """A visitor's stream: each event as the widget websocket would show it."""
    async for event in events:
        message = event.get("message") if event.get("type") == "message" else None
        sources = None
        if message and (message.get("metadata") or {}).get("sources"):
            sources = await engine.db(customer_sources, message)  # published ones, as links
        shown = customer_event(event, sources=sources)  # keep-alives pass through as they are
        if shown is not None:
            yield shown


def follows_turn(request: HttpRequest) -> bool:
    """Whether a post asks to follow its turn (SSE, or `?wait=` given at all: an invalid
    value is the view's 400 to answer)."""
    return "text/event-stream" in request.headers.get("accept", "") or "wait" in request.GET


def answering_view(view_class: Any) -> Callable[..., Any]:
    """The URL callback for `view_class` (an `ApiView` whose `post` queues a turn):
    posts that follow their turn run the view on an engine database thread, the rest as
    usual. Keeps what DRF and the schema generator read from `as_view()`'s callback."""
    sync_view = view_class.as_view()
    run_as_usual = sync_to_async(sync_view)

    async def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Under ASGI only: a WSGI server (or the test client) ends the loop this view
        # runs on before the response is read.
        if request.method == "POST" and isinstance(request, ASGIRequest) and follows_turn(request):
            request.answer_loop = asyncio.get_running_loop()  # type: ignore[attr-defined]
            return await engine.db(sync_view, request, *args, **kwargs)
        return await run_as_usual(request, *args, **kwargs)

    for name in ("cls", "initkwargs", "csrf_exempt", "view_class", "view_initkwargs"):
        if hasattr(sync_view, name):
            setattr(view, name, getattr(sync_view, name))
    view.__name__ = view.__qualname__ = sync_view.__name__
    view.__doc__ = sync_view.__doc__
    return view


def subscribe_if(mode: str, conversation_id: Any, request: Request) -> Subscription | None:
    """Subscribe before the write when the answer will follow the turn (on the server's
    loop, when `answering_view` runs the view on a thread of the engine's)."""
    if mode == "poll":
        return None
    loop = getattr(request._request, "answer_loop", None)
    return Subscription(conversation_id, loop=loop).open_sync()


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
        result = post_result_dict(
            message=message, turn=turn, created=created,
            answer=_answer_items(turn) if finished else [], internal=internal, customer=customer,
        )
        return Response(result, status=status)
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
    stored = post_result_dict(message=message, turn=turn, created=created, answer=[], internal=internal)
    return waited_json_response(subscription, events, body, status=status, fallback=stored)
