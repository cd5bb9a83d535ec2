"""Template filters for the console pages. Every filter returns plain text; the template
engine escapes it, so nothing a customer, the model or a tool wrote can become markup."""

from __future__ import annotations

from typing import Any

from django import template

from conversations.console.selectors import pretty_json as _pretty_json

register = template.Library()

_WHO = {
    "user": "Customer",
    "assistant": "AI",
    "function_call": "Tool call",
    "function_output": "Tool output",
    "staff": "Staff",
    "note": "Internal note",
}


@register.filter
def stars(score: Any) -> str:
    """A 1-5 rating as text: "★★★★☆ 4/5" (the number too, for screen readers and copy)."""
    try:
        n = max(0, min(5, int(score)))
    except (TypeError, ValueError):
        return ""
    return f"{'★' * n}{'☆' * (5 - n)} {n}/5"


@register.filter
def pretty_json(value: Any) -> str:
    return _pretty_json(value)


@register.filter
def who(message: Any) -> str:
    label = _WHO.get(message.kind, message.kind)
    author = (message.metadata or {}).get("author_name")
    if author and message.kind in ("staff", "note"):
        return f"{label} · {author}"
    return label


@register.filter
def ms(value: Any) -> str:
    """Milliseconds as a short human duration."""
    if value in (None, ""):
        return "—"
    value = int(value)
    return f"{value} ms" if value < 1000 else f"{value / 1000:.2f} s"


_ACTIONS = {
    "take_over": "took over",
    "hand_back": "handed back to the AI",
    "reply": "replied",
    "note": "added a note",
    "retry": "retried a turn",
    "resolve": "resolved",
    "reopen": "reopened",
    "handoff": "handed off to staff",
    "cancel": "cancelled a turn",
    "fact_add": "added a customer fact",
    "fact_edit": "edited a customer fact",
    "fact_delete": "deleted a customer fact",
}


@register.filter
def action_label(action: str) -> str:
    return _ACTIONS.get(action, action.replace("_", " "))
