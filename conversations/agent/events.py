"""Every event the system sends to subscribers, as typed structures, and how engine
events reach them.

The Channels layer delivers at most once, so an event is only a fast hint: the database
is the truth, and stored items carry their `seq` so a client that missed frames asks
for everything after the last `seq` it saw. Every engine event carries `conversation`
and, when it belongs to a turn, `turn`. Subscribers (the websocket consumer, the SSE
stream, the admin's live view) join `group_name(conversation_id)` and receive messages
of type `conversation.event` whose `event` key holds one of the `EngineEvent`s built here.

This module is the one list (docs/widget.md has the table): `EngineEvent`, what the
services and the engine publish to a conversation's group, and `ConnectionEvent`, what a
door sends to one connection: the websocket's `ready` (built by
`widget.catchup.connection_state`), `read`, `caught_up`, `ack`, `typing` and `error`,
and the SSE stream's `stream.timeout`. The engine events' builders are named `*_event`
(tests/realtime/test_every_event.py sends one of each through every consumer); the
connection events' builders are named for what they say (`caught_up_at`,
`typing_hint`, `stream_timed_out`); `ack` and `error` are built where they are sent.
Visitors get the customer view of an engine event (`conversations.customer_view`):
notes withheld, `turn.failed` without `error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypeAlias, TypedDict, get_args, get_type_hints
from uuid import UUID

from conversations.presenters import conversation_state, message_to_dict

if TYPE_CHECKING:
    from conversations.models import Conversation, Message, Turn

CHANNEL_MESSAGE_TYPE = "conversation.event"


def group_name(conversation_id: UUID | str) -> str:
    return f"conversation.{conversation_id}"


# --- engine events: published to the conversation's group ------------------------------
class MessageEvent(TypedDict):
    type: Literal["message"]
    conversation: str
    turn: str | None
    seq: int
    message: dict[str, Any]  # `presenters.message_to_dict`
    model_label: NotRequired[str]  # assistant items read back for a catch-up


class TurnQueuedEvent(TypedDict):
    type: Literal["turn.queued"]
    conversation: str
    turn: str
    attempt: int


class TurnStartedEvent(TypedDict):
    type: Literal["turn.started"]
    conversation: str
    turn: str
    attempt: int
    model: str
    model_label: str


class TextDeltaEvent(TypedDict):
    type: Literal["text.delta"]
    conversation: str
    turn: str
    delta: str


class CommentaryEvent(TypedDict):
    type: Literal["turn.commentary"]
    conversation: str
    turn: str
    delta: str


class ToolStartedEvent(TypedDict):
    type: Literal["tool.started"]
    conversation: str
    turn: str
    call_id: str
    name: str
    activity: str


class ToolFinishedEvent(TypedDict):
    type: Literal["tool.finished"]
    conversation: str
    turn: str
    call_id: str
    name: str
    ok: bool


class TurnCompletedEvent(TypedDict):
    type: Literal["turn.completed"]
    conversation: str
    turn: str
    message_seq: int | None


class TurnFailedEvent(TypedDict):
    type: Literal["turn.failed"]
    conversation: str
    turn: str
    error_code: str
    error: NotRequired[str]  # withheld from visitors
    retryable: bool


class TurnCancelledEvent(TypedDict):
    type: Literal["turn.cancelled"]
    conversation: str
    turn: str


class ConversationUpdatedEvent(TypedDict):
    type: Literal["conversation.updated"]
    conversation: str
    status: str
    ai_paused: bool
    agent: int
    channel: str
    last_seq: int
    resolution: int  # how many times it has been resolved: the widget asks to rate each once


EngineEvent: TypeAlias = (
    MessageEvent | TurnQueuedEvent | TurnStartedEvent | TextDeltaEvent | CommentaryEvent | ToolStartedEvent
    | ToolFinishedEvent | TurnCompletedEvent | TurnFailedEvent | TurnCancelledEvent | ConversationUpdatedEvent
)


def event_types(*events: Any) -> list[str]:
    """The `type` values of these event TypedDicts, in order (schemas list them)."""
    return [get_args(get_type_hints(event)["type"])[0] for event in events]


def engine_event_types() -> list[str]:
    """Every engine event's `type`, in `EngineEvent`'s order."""
    return event_types(*get_args(EngineEvent))


def message_event(message: Message) -> MessageEvent:
    return {
        "type": "message",
        "conversation": str(message.conversation_id),
        "turn": str(message.turn_id) if message.turn_id else None,
        "seq": message.seq,
        "message": message_to_dict(message),
    }


def turn_queued_event(turn: Turn) -> TurnQueuedEvent:
    return {
        "type": "turn.queued",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "attempt": turn.attempt,
    }


def turn_started_event(turn: Turn, *, model_label: str) -> TurnStartedEvent:
    return {
        "type": "turn.started",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "attempt": turn.attempt,
        "model": turn.model,
        "model_label": model_label,
    }


def text_delta_event(conversation_id: str, turn_id: str, delta: str) -> TextDeltaEvent:
    return {"type": "text.delta", "conversation": conversation_id, "turn": turn_id, "delta": delta}


def commentary_event(conversation_id: str, turn_id: str, delta: str) -> CommentaryEvent:
    """Text of a `commentary` message ("Let me look that up"): progress, never the answer."""
    return {"type": "turn.commentary", "conversation": conversation_id, "turn": turn_id, "delta": delta}


def tool_started_event(
    conversation_id: str, turn_id: str, *, call_id: str, name: str, activity: str
) -> ToolStartedEvent:
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
) -> ToolFinishedEvent:
    return {
        "type": "tool.finished",
        "conversation": conversation_id,
        "turn": turn_id,
        "call_id": call_id,
        "name": name,
        "ok": ok,
    }


def turn_completed_event(turn: Turn, *, message_seq: int | None) -> TurnCompletedEvent:
    return {
        "type": "turn.completed",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "message_seq": message_seq,
    }


def turn_failed_event(turn: Turn) -> TurnFailedEvent:
    return {
        "type": "turn.failed",
        "conversation": str(turn.conversation_id),
        "turn": str(turn.id),
        "error_code": turn.error_code,
        "error": turn.error_message,
        "retryable": True,
    }


def turn_cancelled_event(turn: Turn) -> TurnCancelledEvent:
    return {"type": "turn.cancelled", "conversation": str(turn.conversation_id), "turn": str(turn.id)}


def conversation_updated_event(conversation: Conversation) -> ConversationUpdatedEvent:
    state = conversation_state(conversation)
    return {
        "type": "conversation.updated",
        "conversation": str(conversation.id),
        "status": state["status"],
        "ai_paused": state["ai_paused"],
        "agent": state["agent"],
        "channel": state["channel"],
        "last_seq": state["last_seq"],
        "resolution": state["resolution"],
    }


# --- connection events: sent by a door to one socket or stream -------------------------
class ReadyEvent(TypedDict):
    """The conversation websocket's first event (`widget.catchup.connection_state`)."""

    type: Literal["ready"]
    conversation: str
    role: str  # "visitor" or "staff"
    status: str
    ai_paused: bool
    last_seq: int
    agent: dict[str, Any]  # name
    model: dict[str, Any]  # name, label, offline; for visitors provenance
    read_seq: int  # the customer's messages read up to here
    turns: list[dict[str, Any]]  # recent attempts not completed
    limits: dict[str, Any]  # max_message_chars
    resolution: int  # how many times it has been resolved
    rated: bool  # the current resolution has been rated (CSAT)


class ReadEvent(TypedDict):
    """Visitors only: a staff member has seen the customer's messages up to `seq`."""

    type: Literal["read"]
    conversation: str
    seq: int


class CaughtUpEvent(TypedDict):
    type: Literal["caught_up"]
    last_seq: int


class AckEvent(TypedDict):
    type: Literal["ack"]
    frame: str  # "message", "retry", "handoff" or "rating"
    client_id: NotRequired[str | None]  # message
    seq: NotRequired[int]  # message
    created: NotRequired[bool]  # message
    turn: NotRequired[Any]  # retry: the turn as the frame named it
    new_turn: NotRequired[str]  # retry


class TypingEvent(TypedDict):
    type: Literal["typing"]
    conversation: str
    role: str | None  # the typist's: "visitor" or "staff"
    name: str
    active: bool


class ErrorEvent(TypedDict):
    """A frame the websocket refused or failed; echoes the frame's `frame`, `client_id`
    and `turn`, and has `fields` for validation errors."""

    type: Literal["error"]
    code: str
    message: str
    frame: NotRequired[str]
    client_id: NotRequired[str]
    turn: NotRequired[str]
    fields: NotRequired[dict[str, str]]


class StreamTimeoutEvent(TypedDict):
    """The SSE stream's last event when the turn did not finish in time."""

    type: Literal["stream.timeout"]
    conversation: str
    turn: str | None


ConnectionEvent: TypeAlias = (
    ReadyEvent | ReadEvent | CaughtUpEvent | AckEvent | TypingEvent | ErrorEvent | StreamTimeoutEvent
)
Event: TypeAlias = EngineEvent | ConnectionEvent


def read_up_to(conversation_id: UUID | str, seq: int) -> ReadEvent:
    return {"type": "read", "conversation": str(conversation_id), "seq": seq}


def caught_up_at(last_seq: int) -> CaughtUpEvent:
    return {"type": "caught_up", "last_seq": last_seq}


def typing_hint(conversation_id: str, *, role: str | None, name: str, active: bool) -> TypingEvent:
    return {"type": "typing", "conversation": conversation_id, "role": role, "name": name, "active": active}


def stream_timed_out(conversation_id: str, turn_id: str | None) -> StreamTimeoutEvent:
    return {"type": "stream.timeout", "conversation": conversation_id, "turn": turn_id}
