"""Following a turn to its end for the API: Server-Sent Events and `wait`.

The view subscribes to the conversation's Channels group *before* it posts (so no
event published after the commit can be missed), then hands the subscription to an
async generator that Django serves under daphne without holding a thread. The stream
carries the same events the websocket sends, and ends after the followed turn's
terminal event (`turn.completed` — preceded by its stored items, the assistant's
answer last — `turn.failed` or `turn.cancelled`).

A waiting client holds no database connection: the view that posts runs on one of the
engine's database threads (`views/answers.answering_view`), which gives its connection
back when the view returns, and every later read is one short `engine.db` job. The
subscription lives on the event loop; a view on another thread opens and closes it
there (`loop`).

The channel layer delivers at most once, so the database stays the truth: when the
layer is silent for a moment, and before the terminal event, the stream reads what
was stored and emits any item it has not sent (deduplicated by `seq`); a terminal
event that was lost is rebuilt from the turn row. A read that finds the database
unreachable is skipped (the next silence reads again). The group also carries typing
hints (`conversation.typing`), which the stream ignores. The turn runs on the engine,
not in the request: a client that disconnects only ends its own subscription.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import DatabaseError
from django.http import StreamingHttpResponse

from conversations.agent.engine import engine
from conversations.agent.events import (
    CHANNEL_MESSAGE_TYPE,
    EngineEvent,
    group_name,
    message_event,
    stream_timed_out,
    turn_cancelled_event,
    turn_completed_event,
    turn_failed_event,
)
from conversations.channel_layers.redis_layer import LOST_MESSAGE_TYPE
from conversations.conf import platform_setting
from conversations.models import Message, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
TERMINAL_EVENTS = ("turn.completed", "turn.failed", "turn.cancelled")
KEEPALIVE: dict[str, Any] = {"type": "keepalive"}


class Subscription:
    """One channel in the conversation's group. Opened from the (synchronous) view
    before posting; received from and closed on the server's event loop. `loop` is
    that loop when the view runs on a thread of its own (an engine database thread),
    where `async_to_sync` would start a private loop the layer's connections do not
    belong to."""

    def __init__(self, conversation_id: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.layer = get_channel_layer()
        self.group = group_name(conversation_id)
        self.loop = loop
        self.channel: str | None = None
        self.closed = False
        self._pending: asyncio.Future[Any] | None = None

    def _run_sync(self, coroutine: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        if self.loop is None or not self.loop.is_running():
            return async_to_sync(coroutine)()
        return asyncio.run_coroutine_threadsafe(coroutine(), self.loop).result(timeout=30)

    async def _open(self) -> None:
        assert self.layer is not None
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)

    def open_sync(self) -> Subscription:
        if self.layer is not None:
            self._run_sync(self._open)
        return self

    async def receive(self, seconds: float) -> dict[str, Any] | None:
        """The next group message, or None after `seconds` of silence. A
        pending receive survives a timeout, so nothing is dropped between calls."""
        if self.layer is None or self.channel is None:
            await asyncio.sleep(seconds)
            return None
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.layer.receive(self.channel))
        done, _ = await asyncio.wait({self._pending}, timeout=seconds)
        if not done:
            return None
        task, self._pending = self._pending, None
        return task.result()

    async def rejoin(self) -> None:
        """Join the group again after the layer lost its broker (a restarted Redis has
        forgotten every group). Best effort: while Redis is still away the stream goes
        on from the database."""
        if self.layer is None or self.channel is None:
            return
        try:
            await self.layer.group_add(self.group, self.channel)
        except Exception:
            logger.info("could not rejoin %s after the channel layer lost its broker", self.group)

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._pending is not None:
            self._pending.cancel()
        if self.layer is not None and self.channel is not None:
            await self.layer.group_discard(self.group, self.channel)

    def close_sync(self) -> None:
        if not self.closed:
            self._run_sync(self.aclose)


def _stored_since(conversation_id: str, turn_id: str, after_seq: int, internal: bool) -> tuple[Turn, list[Message]]:
    turn = Turn.objects.select_related("user_message").get(pk=turn_id)
    messages = Message.objects.filter(conversation_id=conversation_id, seq__gt=after_seq).order_by("seq")
    if not internal:
        messages = messages.exclude(kind=MessageKind.NOTE)
    return turn, list(messages[:500])


def _terminal_event(turn: Turn, messages: list[Message]) -> EngineEvent:
    if turn.status == TurnStatus.COMPLETED:
        answers = [m.seq for m in messages if m.turn_id == turn.pk and m.kind == MessageKind.ASSISTANT]
        return turn_completed_event(turn, message_seq=answers[-1] if answers else None)
    if turn.status == TurnStatus.FAILED:
        return turn_failed_event(turn)
    return turn_cancelled_event(turn)


async def follow_turn(
    subscription: Subscription,
    *,
    conversation_id: str,
    turn_id: str | None,
    after_seq: int,
    internal: bool,
    first: Sequence[Mapping[str, Any]],
    max_seconds: float,
    check_first: bool = False,
) -> AsyncIterator[Mapping[str, Any]]:
    """Yield the conversation's events until turn `turn_id` ends (or `max_seconds`
    pass: then a `stream.timeout` event). Message events are deduplicated by seq and
    internal notes are withheld unless `internal`. Yields KEEPALIVE during silence."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    last_sent = loop.time()
    sent: set[int | None] = set()

    def emit_message(event: Mapping[str, Any]) -> bool:
        seq = event.get("seq")
        if seq in sent:
            return False
        sent.add(seq)
        return internal or event.get("message", {}).get("kind") != MessageKind.NOTE

    async def from_database() -> tuple[list[EngineEvent], bool]:
        try:
            turn, messages = await engine.db(_stored_since, conversation_id, turn_id, after_seq, internal)
        except DatabaseError:  # unreachable for a moment: keep following the events
            logger.warning("stream could not read conversation %s", conversation_id, exc_info=True)
            return [], False
        events: list[EngineEvent] = [e for e in map(message_event, messages) if emit_message(e)]
        if turn.is_finished:
            events.append(_terminal_event(turn, messages))
        return events, turn.is_finished

    try:
        for event in first:
            if event.get("type") != "message" or emit_message(event):
                yield event
        if turn_id is None:
            return
        if check_first:
            events, finished = await from_database()
            for event in events:
                yield event
            if finished:
                return
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                yield stream_timed_out(conversation_id, turn_id)
                return
            received = await subscription.receive(min(POLL_SECONDS, remaining))
            if received is not None and received.get("type") == LOST_MESSAGE_TYPE:
                # Events may have been missed and the group forgotten: join again and
                # read what was stored meanwhile now, rather than at the next silence.
                await subscription.rejoin()
                received = None
            if received is None:
                events, finished = await from_database()
                for event in events:
                    yield event
                if finished:
                    return
                if events:
                    last_sent = loop.time()
                elif loop.time() - last_sent >= KEEPALIVE_SECONDS:
                    last_sent = loop.time()
                    yield KEEPALIVE
                continue
            if received.get("type") != CHANNEL_MESSAGE_TYPE:
                continue  # typing hints and anything else that is not an engine event
            event = received.get("event") or {}
            kind = event.get("type")
            if kind == "message":
                if emit_message(event):
                    last_sent = loop.time()
                    yield event
            elif kind in TERMINAL_EVENTS and event.get("turn") == turn_id:
                events, _ = await from_database()  # stored items whose hint was lost
                for stored in events:
                    if stored.get("type") == "message":
                        yield stored
                yield event
                return
            else:
                last_sent = loop.time()
                yield event
    finally:
        await subscription.aclose()


def release_request_thread() -> None:
    """Let the request's thread go while its response streams.

    Under ASGI, Django gives each request a thread of its own for its synchronous
    parts (the middleware, `ThreadSensitiveContext`) and keeps it until the request
    ends: for a client waiting a minute, a parked thread per waiter. Once the body
    streams, every middleware has run; the thread is shut down here, and the rest of
    the request's synchronous work (closing the response) gets a fresh one for a
    moment. Relies on asgiref's per-context executor map; if that is not there, the
    thread simply stays parked."""
    get_context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    context = get_context.get(None) if get_context is not None else None
    if context is None or executors is None or getattr(context, "_executor", None) is not None:
        return  # no per-request thread, or one its owner manages
    executor = executors.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


def sse_frame(event: Mapping[str, Any]) -> bytes:
    if event is KEEPALIVE:
        return b": keepalive\n\n"
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event.get('type', 'message')}\ndata: {data}\n\n".encode()


class _SubscribedResponse(StreamingHttpResponse):
    """Closes its subscription when Django closes the response, even if the body was
    never iterated (the generator's own `finally` covers the usual case)."""

    def __init__(self, content: AsyncIterator[bytes], subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._subscription = subscription

    def close(self) -> None:
        try:
            self._subscription.close_sync()
        finally:
            super().close()


def event_stream_response(subscription: Subscription, events: AsyncIterator[Mapping[str, Any]]) -> StreamingHttpResponse:
    async def frames() -> AsyncIterator[bytes]:
        release_request_thread()
        async for event in events:
            yield sse_frame(event)

    response = _SubscribedResponse(frames(), subscription, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def waited_json_response(
    subscription: Subscription,
    events: AsyncIterator[Mapping[str, Any]],
    body: Callable[[], dict[str, Any]],
    *,
    status: int,
    fallback: dict[str, Any],
) -> StreamingHttpResponse:
    """Wait for the turn without holding a thread or a connection, then answer `body()`
    as JSON (read from the database once the turn ended or the wait ran out). The status
    was sent when the wait began, so if that read finds the database unreachable the
    answer is `fallback`: what the post stored, its turn as it was then (poll it)."""

    async def content() -> AsyncIterator[bytes]:
        release_request_thread()
        async for _event in events:
            pass
        try:
            data = await engine.db(body)
        except DatabaseError:
            logger.warning("wait could not read its answer; answering the stored post", exc_info=True)
            data = fallback
        yield json.dumps(data, separators=(",", ":")).encode()

    return _SubscribedResponse(content(), subscription, content_type="application/json", status=status)


def stream_max_seconds() -> float:
    return float(platform_setting("API_STREAM_MAX_SECONDS"))
