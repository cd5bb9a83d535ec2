"""The conversation websocket: `ws/conversations/<uuid>/?token=<visitor token>&after=<seq>`.

The platform's one websocket, for customers and staff alike. A thin door. `connect`
authorises (a visitor token, or a staff session from the site's own origin, as the
console's live view and try-it panel connect), joins the conversation's event group,
sends a `ready` event with the conversation's state and then every stored item after
`after`. From then on it relays the engine's events (the customer view for visitors,
unchanged for staff), typing hints and read marks (a staff connection marks the
customer's messages read, `presentation.staff_read_mark`; a staff member's typing is
relayed only if they may reply), and turns client frames into service calls:
`message` -> `message_post` (staff: `staff_reply_post`), `retry` -> `turn_retry`,
`handoff` -> `conversation_handoff`, `rating` -> `rating_add` (CSAT), `resume` -> catch-up. The services authorise every
action of the connection's principal (`conversations.authorization.authorize`); ORM
work runs on the engine's database threads (`engine.db`).

Frames from the channel layer are only hints (it delivers at most once), so each
connection tracks the highest `seq` it has delivered: a stored item is sent once, in
seq order, and a gap in the stream is filled from the database before the item that
revealed it. If the channel layer loses its broker (`layer.lost`, see
`conversations.channel_layers.redis_layer`), or cannot join the group at connect, the
socket closes with 4503 so the client reconnects and catches up: live delivery is never
silently broken. docs/widget.md documents the protocol.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from conversations.access import turn_of_conversation
from conversations.agent.engine import engine
from conversations.agent.events import (
    AckEvent,
    MessageEvent,
    caught_up_at,
    group_name,
    message_event,
    read_up_to,
    typing_hint,
)
from conversations.authorization import Action, authorize
from conversations.conf import platform_setting
from conversations.customer_view import customer_sources
from conversations.errors import PlatformError
from conversations.models import Conversation
from conversations.models.message import MessageKind
from conversations.models.turn import TurnTrigger
from conversations.ops.metrics import websocket_closed, websocket_opened
from conversations.services.conversations import conversation_handoff
from conversations.services.messages import message_post, staff_reply_post
from conversations.services.ratings import rating_add
from conversations.services.turns import turn_retry
from conversations.widget import catchup, protocol
from conversations.widget.catchup import STAFF, VISITOR, Viewer
from conversations.widget.origins import scope_is_own_origin
from conversations.widget.presentation import READ_MESSAGE_TYPE, staff_read_mark, visitor_event
from conversations.widget.socketlimits import socket_acquire, socket_release
from tools.registry import activity_for

logger = logging.getLogger(__name__)
TYPING_MESSAGE_TYPE = "conversation.typing"


def _post(viewer: Viewer, text: Any, client_id: Any) -> tuple[MessageEvent, bool]:
    # The services lock and re-read the row themselves; the connection's copy will do.
    # They also decide what the connection's principal may do (a viewer may not reply).
    conversation = viewer.conversation
    if viewer.role == STAFF:
        message = staff_reply_post(
            conversation=conversation, actor=viewer.principal, text=text, client_id=client_id
        )
        return message_event(message), True
    result = message_post(conversation=conversation, text=text, client_id=client_id, actor=viewer.principal)
    return message_event(result.message), result.created


def _retry(viewer: Viewer, turn_id: Any) -> str:
    turn = turn_of_conversation(viewer.conversation.pk, turn_id)
    trigger = TurnTrigger.STAFF_RETRY if viewer.role == STAFF else TurnTrigger.CUSTOMER_RETRY
    return str(turn_retry(turn=turn, actor=viewer.principal, trigger=trigger).pk)


def _authorize_staff_typing(viewer: Viewer) -> None:
    # A typing hint announces a reply: only staff who may send one may announce it, so a
    # read-only viewer's console never tells the customer that someone is writing.
    authorize(viewer.principal, Action.REPLY, viewer.conversation)


def _handoff(viewer: Viewer, reason: str) -> None:
    conversation = Conversation.objects.get(pk=viewer.conversation.pk)
    conversation_handoff(conversation=conversation, reason=reason, actor=viewer.principal)


def _rate(viewer: Viewer, score: Any, comment: Any) -> None:
    # The service decides who may rate (the customer only: a staff connection is refused).
    conversation = Conversation.objects.get(pk=viewer.conversation.pk)
    rating_add(conversation=conversation, actor=viewer.principal, score=score, comment=comment)


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    viewer: Viewer | None = None
    slots: list[str] | None = None

    # --- connection -------------------------------------------------------------------
    async def connect(self) -> None:
        # Accept before authorising so a refusal carries a readable close code (4404):
        # a client can tell "this conversation is not yours" from "the network failed".
        await self.accept()
        self.group: str | None = None
        self.sent_seq = 0
        self.turn_labels: dict[str, str] = {}
        self.frames = protocol.TokenBucket(protocol.FRAME_BURST, protocol.FRAME_RATE)
        self.posts = protocol.TokenBucket(protocol.MESSAGE_BURST, protocol.MESSAGE_RATE)
        self.rejected = 0
        self.last_rejected = 0.0
        self.last_typing = 0.0
        self.frame_limit = protocol.max_frame_chars(platform_setting("MAX_MESSAGE_CHARS"))
        query = parse_qs(self.scope.get("query_string", b"").decode("latin1"))
        conversation_id = str(self.scope["url_route"]["kwargs"]["conversation_id"])
        try:
            uuid.UUID(conversation_id)
            viewer = await engine.db(
                catchup.viewer_for,
                conversation_id=conversation_id,
                token=(query.get("token") or [""])[0],
                user=self.scope.get("user"),
                staff_origin=scope_is_own_origin(self.scope),
            )
        except (PlatformError, ValueError):
            await self.send_json(protocol.error_event("not_found", "Conversation not found."))
            await self.close(code=protocol.CLOSE_NOT_FOUND)
            return
        self.slots = socket_acquire(self.scope, viewer)
        if self.slots is None:
            await self.send_json(protocol.error_event("too_many_sockets", "Too many open connections."))
            await self.close(code=protocol.CLOSE_TOO_MANY_SOCKETS)
            return
        self.viewer = viewer
        websocket_opened()
        # Join before reading, so nothing stored between the read and the join is missed;
        # events that arrive meanwhile wait in the channel and are de-duplicated by seq.
        try:
            await self.channel_layer.group_add(group_name(viewer.conversation.pk), self.channel_name)
        except Exception:
            logger.warning("could not join the conversation's group; closing with 4503", exc_info=True)
            await self.close(code=protocol.CLOSE_LIVE_DELIVERY_LOST)
            return
        self.group = group_name(viewer.conversation.pk)
        await self.send_json(
            await engine.db(catchup.connection_state, viewer.conversation.pk, role=viewer.role)
        )
        after = protocol.seq_value((query.get("after") or ["0"])[0])
        await self._catch_up(after or 0)
        if viewer.role == STAFF:
            await self._staff_read(self.sent_seq)  # a staff member opened it: the customer sees "Read"

    async def disconnect(self, code: int) -> None:
        socket_release(self.slots)
        self.slots = None
        if self.viewer is not None:
            websocket_closed()
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- delivering stored items in seq order -----------------------------------------
    async def _catch_up(self, after: int) -> None:
        assert self.viewer is not None
        last = await engine.db(catchup.last_seq, self.viewer.conversation.pk)
        self.sent_seq = min(after, last)
        await self._send_stored(upto=last)
        await self.send_json(caught_up_at(self.sent_seq))

    async def _send_stored(self, *, upto: int) -> None:
        """Send stored items with `sent_seq < seq <= upto` from the database."""
        assert self.viewer is not None
        while self.sent_seq < upto:
            events = await engine.db(
                catchup.message_events_after, self.viewer.conversation.pk,
                after=self.sent_seq, upto=upto, role=self.viewer.role,
            )
            for event in events:
                await self._send_event(event)
                self.sent_seq = event["seq"]
            if len(events) < catchup.CATCHUP_BATCH:
                break
        # Items the viewer never sees (notes) still advance the position.
        self.sent_seq = max(self.sent_seq, upto)

    async def _deliver_message(self, event: Mapping[str, Any]) -> None:
        seq = event.get("seq") or 0
        if seq <= self.sent_seq:
            return  # already delivered (catch-up and the live stream overlap)
        if seq > self.sent_seq + 1:
            await self._send_stored(upto=seq)  # a hint was lost: the database fills the gap
            return
        if event["message"].get("kind") == MessageKind.ASSISTANT and event.get("turn"):
            event = {**event, "model_label": await self._turn_label(event["turn"])}
        self.sent_seq = seq
        await self._send_event(event)
        if self.viewer is not None and self.viewer.role == STAFF and event["message"].get("kind") == MessageKind.USER:
            await self._staff_read(seq)

    async def _staff_read(self, seq: int) -> None:
        assert self.viewer is not None
        if seq and await engine.db(staff_read_mark, conversation_id=self.viewer.conversation.pk, seq=seq):
            await self.channel_layer.group_send(self.group, {"type": READ_MESSAGE_TYPE, "seq": seq})

    async def _turn_label(self, turn_id: str) -> str:
        if turn_id not in self.turn_labels:
            self.turn_labels[turn_id] = await engine.db(catchup.turn_model_label, turn_id)
        return self.turn_labels[turn_id]

    async def _send_event(self, event: Mapping[str, Any]) -> None:
        assert self.viewer is not None
        shown: Mapping[str, Any] | None = event
        if self.viewer.role == VISITOR:
            message = event.get("message") if event.get("type") == "message" else None
            sources = None
            if message and (message.get("metadata") or {}).get("sources"):
                sources = await engine.db(customer_sources, message)
            shown = protocol.customer_event(event, activity_for=activity_for, sources=sources)
            shown = visitor_event(shown) if shown is not None else None
        if shown is not None:
            await self.send_json(shown)

    # --- channel layer handlers -------------------------------------------------------
    async def conversation_event(self, message: dict[str, Any]) -> None:
        if self.viewer is None:
            return
        event = message.get("event") or {}
        try:
            if event.get("type") == "message":
                await self._deliver_message(event)
                return
            if event.get("type") == "turn.started" and event.get("turn"):
                self.turn_labels[event["turn"]] = event.get("model_label", "")
            await self._send_event(event)
        except Exception:
            # One bad event must not take the connection down; the client can resume.
            logger.exception("could not relay %s", event.get("type"))

    async def layer_lost(self, message: dict[str, Any]) -> None:
        """The channel layer lost its broker: events may be missing and the group
        membership may be gone. Close, so the client reconnects and catches up."""
        await self.close(code=protocol.CLOSE_LIVE_DELIVERY_LOST)

    async def conversation_read(self, message: dict[str, Any]) -> None:
        """A staff member has seen the customer's messages up to `seq`."""
        if self.viewer is None or self.viewer.role != VISITOR:
            return
        await self.send_json(read_up_to(self.viewer.conversation.pk, message["seq"]))

    async def conversation_typing(self, message: dict[str, Any]) -> None:
        if self.viewer is None or message.get("sender") == self.channel_name:
            return
        if message.get("role") == self.viewer.role:
            return
        await self.send_json(typing_hint(
            str(self.viewer.conversation.pk),
            role=message.get("role"),
            name=message.get("name", ""),
            active=bool(message.get("active", True)),
        ))

    # --- client frames ----------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.viewer is None:
            return
        frame: dict[str, Any] = {}
        try:
            if not self.frames.take():
                raise protocol.FrameError("rate_limited", "Too many frames; slow down.")
            frame = protocol.parse_frame(text_data, bytes_data, limit=self.frame_limit)
            await getattr(self, f"frame_{frame['type']}")(frame)
            self._end_flood_if_quiet()
        except protocol.FrameError as exc:
            await self._reject(protocol.error_event(exc.code, exc.message, **self._ref(frame), **exc.extra))
        except PlatformError as exc:
            self._end_flood_if_quiet()
            await self.send_json(protocol.error_event(exc.code, exc.message, fields=exc.fields, **self._ref(frame)))
        except Exception:
            logger.exception("websocket frame %s failed", frame.get("type"))
            await self.send_json(protocol.error_event(
                "internal", "The server could not handle this frame; nothing was lost.", **self._ref(frame)
            ))

    @staticmethod
    def _ref(frame: dict[str, Any]) -> dict[str, Any]:
        """Echo the frame's own ids in its error, so the client can match them up."""
        ref: dict[str, Any] = {"frame": frame.get("type")} if frame.get("type") else {}
        for key in ("client_id", "turn"):
            if isinstance(frame.get(key), str):
                ref[key] = frame[key][:100]
        return ref

    def _end_flood_if_quiet(self) -> None:
        if time.monotonic() - self.last_rejected >= protocol.FLOOD_QUIET_SECONDS:
            self.rejected = 0

    async def _reject(self, event: dict[str, Any]) -> None:
        self.rejected += 1
        self.last_rejected = time.monotonic()
        if self.rejected >= protocol.REJECTED_BEFORE_CLOSE:
            await self.close(code=protocol.CLOSE_TOO_MANY_FRAMES)
            self.viewer = None
            return
        await self.send_json(event)

    async def frame_message(self, frame: dict[str, Any]) -> None:
        assert self.viewer is not None
        if self.viewer.role == VISITOR and not self.posts.take():
            raise protocol.FrameError("rate_limited", "Too many messages; wait a moment and send again.")
        event, created = await engine.db(_post, self.viewer, frame.get("text"), frame.get("client_id"))
        await self.send_json(AckEvent(
            type="ack", frame="message", client_id=frame.get("client_id") or None,
            seq=event["seq"], created=created,
        ))
        await self._deliver_message(event)

    async def frame_typing(self, frame: dict[str, Any]) -> None:
        assert self.viewer is not None
        now = time.monotonic()
        active = frame.get("active", True) is not False
        if active and now - self.last_typing < protocol.TYPING_MIN_INTERVAL:
            return
        if self.viewer.role == STAFF:
            await engine.db(_authorize_staff_typing, self.viewer)
        self.last_typing = now if active else 0.0
        await self.channel_layer.group_send(self.group, {
            "type": TYPING_MESSAGE_TYPE, "sender": self.channel_name, "role": self.viewer.role,
            "name": self.viewer.name, "active": active,
        })

    async def frame_resume(self, frame: dict[str, Any]) -> None:
        after = protocol.seq_value(frame.get("after", 0))
        if after is None:
            raise protocol.FrameError("invalid", '"after" must be a non-negative integer seq.')
        await self._catch_up(after)

    async def frame_retry(self, frame: dict[str, Any]) -> None:
        assert self.viewer is not None
        new_turn = await engine.db(_retry, self.viewer, frame.get("turn"))
        await self.send_json(AckEvent(type="ack", frame="retry", turn=frame.get("turn"), new_turn=new_turn))

    async def frame_handoff(self, frame: dict[str, Any]) -> None:
        assert self.viewer is not None
        if self.viewer.role != VISITOR:
            raise protocol.FrameError("not_allowed", "Only the customer asks for a person.")
        await engine.db(_handoff, self.viewer, "The customer asked for a person (widget button).")
        await self.send_json(AckEvent(type="ack", frame="handoff"))

    async def frame_rating(self, frame: dict[str, Any]) -> None:
        assert self.viewer is not None
        await engine.db(_rate, self.viewer, frame.get("score"), frame.get("comment", ""))
        await self.send_json(AckEvent(type="ack", frame="rating"))
