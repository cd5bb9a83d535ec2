"""What a visitor sees of their conversation, on every door.

One set of functions decides it, so the widget websocket, the REST API (lists, post
results, `?wait` and SSE answers) and anything else that serves a visitor show the same
thing: customer-visible items only (never internal notes), tool activity in words and
whether the step worked rather than the raw tool output, a staff reply's author name
and avatar, an answer's citations of published help articles only, and no other metadata, a failed turn's error code without the provider's error text,
and no conversation metadata the platform writes for staff (why it was handed off). Staff and API keys get the full shapes of `conversations.presenters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conversations.models.message import CUSTOMER_VISIBLE_KINDS, MessageKind
from conversations.widget.help import public_sources
from tools.registry import activity_for


def _activity_for(tool_name: str) -> str:
    return activity_for(tool_name)


def customer_message(
    message: dict[str, Any], *, activity: str | None = None, sources: list[dict[str, str]] | None = None
) -> dict[str, Any] | None:
    """What a visitor sees of one stored item (a `presenters.message_to_dict` shape), or
    None for items they never see. `activity` overrides the tool's activity label.
    `sources`: an answer's citations as the customer may follow them
    (`customer_sources`, which reads the database, so the caller looks them up)."""
    kind = message.get("kind")
    if kind not in CUSTOMER_VISIBLE_KINDS:
        return None
    metadata = message.get("metadata") or {}
    shown = {k: v for k, v in message.items() if k != "metadata"}
    shown["metadata"] = {}
    if kind == MessageKind.STAFF:
        shown["metadata"] = {"author_name": metadata.get("author_name") or ""}
        if metadata.get("author_avatar_url"):
            shown["metadata"]["author_avatar_url"] = metadata["author_avatar_url"]
    if kind == MessageKind.ASSISTANT and sources:
        shown["metadata"] = {"sources": sources}
    if kind == MessageKind.FUNCTION_OUTPUT:
        # The customer learns whether the step worked, not the raw tool payload.
        shown["text"] = ""
        shown["ok"] = bool(metadata.get("ok", True))
    if kind == MessageKind.FUNCTION_CALL:
        shown["activity"] = _activity_for(message.get("tool_name", "")) if activity is None else activity
    return shown


# Conversation metadata the platform writes for staff (why it was handed off: a budget
# breach names its limit and usage); the rest is what the conversation was created with.
INTERNAL_CONVERSATION_METADATA = ("handoff_reason",)


def customer_conversation(data: dict[str, Any]) -> dict[str, Any]:
    """A conversation's shape without the metadata the platform keeps for staff."""
    metadata = {k: v for k, v in (data.get("metadata") or {}).items() if k not in INTERNAL_CONVERSATION_METADATA}
    return {**data, "metadata": metadata}


def customer_turn(summary: dict[str, Any]) -> dict[str, Any]:
    """A turn summary without the provider's error text (the error code stays)."""
    return {**summary, "error": None} if "error" in summary else summary


def customer_sources(message: Mapping[str, Any]) -> list[dict[str, str]]:
    """The citations of an answer (a message dict) a customer may follow: the published
    help articles among its `metadata.sources`, as `{"title", "url"}` (the public page's
    path on the platform); internal documents are left out. Reads the database (one
    query, none for items without sources)."""
    if message.get("kind") != MessageKind.ASSISTANT:
        return []
    sources = (message.get("metadata") or {}).get("sources")
    return public_sources(sources) if sources else []


def customer_event(
    event: Mapping[str, Any], *, activity_for: Any = None, sources: list[dict[str, str]] | None = None
) -> Mapping[str, Any] | None:
    """The customer view of one engine event; None means do not send it. `sources` as
    for `customer_message` (for a message event of an answer)."""
    kind = event.get("type")
    if kind == "message":
        message = event.get("message") or {}
        activity = activity_for(message.get("tool_name", "")) if activity_for is not None else None
        shown = customer_message(message, activity=activity, sources=sources)
        return None if shown is None else {**event, "message": shown}
    if kind == "turn.failed":
        return {k: v for k, v in event.items() if k != "error"}
    return event
