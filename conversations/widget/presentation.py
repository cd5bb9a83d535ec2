"""What the widget shows a customer beside the words: who answers (provenance) and how
far the customer's messages have been read.

Provenance is the site's choice (`SUPPORT_WIDGET_PROVENANCE`: "off", "assistant" or
"model"), applied here on the server, so a visitor's session answer, `ready` event and
live events carry the model's name only when the site shows it. The offline demo model
always says what it is, whatever the setting: it is never passed off as a real one.

Read state: a customer message is read once the assistant started a turn after it (the
model is sent everything stored before) or a staff member had the conversation open
(`staff_read_mark`, called by the websocket consumer for staff connections).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import Max

from conversations.conf import platform_setting
from conversations.models import Conversation, Message, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus

PROVENANCE_MODES = ("off", "assistant", "model")
READ_MESSAGE_TYPE = "conversation.read"
# Items that only exist after everything before them was read (by the model or a person).
_READING_KINDS = (MessageKind.ASSISTANT, MessageKind.FUNCTION_CALL, MessageKind.STAFF)
_STARTED = (TurnStatus.RUNNING, TurnStatus.COMPLETED, TurnStatus.FAILED)


def provenance_mode() -> str:
    mode = platform_setting("WIDGET_PROVENANCE")
    return mode if mode in PROVENANCE_MODES else "assistant"


def visitor_model(info: dict[str, Any]) -> dict[str, Any]:
    """The `model` object as a visitor sees it, with `provenance` saying what to show:
    "offline" (always, for the offline model), else the site's mode. The name and label
    are blank unless the site shows the model's name."""
    if info.get("offline"):
        return {**info, "provenance": "offline"}
    mode = provenance_mode()
    if mode == "model":
        return {**info, "provenance": mode}
    return {"name": "", "label": "", "offline": False, "provenance": mode}


def visitor_event(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """A live event for a visitor without the model's name when the site hides it."""
    if provenance_mode() == "model" or not ({"model", "model_label"} & event.keys()):
        return event
    if event.get("model_label", "").startswith("Offline demo model"):
        return event  # honest about the offline model whatever the mode
    return {key: value for key, value in event.items() if key not in ("model", "model_label")}


def read_seq(conversation: Conversation) -> int:
    """The highest seq up to which the customer's messages have been read."""
    answered = Message.objects.filter(conversation=conversation, kind__in=_READING_KINDS).aggregate(
        seq=Max("seq")
    )["seq"] or 0
    started = Turn.objects.filter(conversation=conversation, status__in=_STARTED).aggregate(
        seq=Max("user_message__seq")
    )["seq"] or 0
    return max(conversation.staff_read_seq, answered, started)


def staff_read_mark(*, conversation_id: Any, seq: int) -> bool:
    """Record that a staff member has seen the conversation up to `seq`; True when that
    moved the mark (the caller then tells the conversation's other sockets). One UPDATE,
    never backwards, so concurrent staff connections need no lock."""
    return bool(Conversation.objects.filter(pk=conversation_id, staff_read_seq__lt=seq).update(staff_read_seq=seq))
