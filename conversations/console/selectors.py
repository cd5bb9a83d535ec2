"""Reads for the console pages, each a fixed number of queries whatever the data size.

The transcript is read a page of items at a time by `seq` (the newest page first, then
"load earlier" and live catch-up pages), with the turns of the customer messages on
that page in one more query, so a 5,000-item conversation costs what a 5-item one does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from conversations.agent.history import RECALL_NOTE
from conversations.console.models import Replay
from conversations.models import Conversation, CsatRating, CustomerFact, Message, StaffAction, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus

TRANSCRIPT_PAGE = 100


@dataclass
class TranscriptEntry:
    message: Message
    output: Message | None = None  # a tool call's output (when on the same page)
    attempts: list[Turn] = field(default_factory=list)  # turns answering a customer message

    @property
    def latest_attempt(self) -> Turn | None:
        return self.attempts[-1] if self.attempts else None


@dataclass
class TranscriptPage:
    entries: list[TranscriptEntry]
    first_seq: int | None
    last_seq: int | None
    has_earlier: bool


def transcript_page(
    conversation: Conversation, *, before: int | None = None, after: int | None = None,
    limit: int = TRANSCRIPT_PAGE,
) -> TranscriptPage:
    """One page of the transcript in seq order: the newest `limit` items (optionally
    before a seq), or, with `after`, the first `limit` items after a seq (catch-up)."""
    items = Message.objects.filter(conversation=conversation)
    if after is not None:
        rows = list(items.filter(seq__gt=after).order_by("seq")[:limit])
    else:
        if before is not None:
            items = items.filter(seq__lt=before)
        rows = list(items.order_by("-seq")[: limit + 1])
        rows.reverse()
    has_earlier = False
    if after is None and len(rows) > limit:
        rows = rows[1:]
        has_earlier = True
    elif after is not None and rows:
        has_earlier = rows[0].seq > 1
    user_ids = [m.pk for m in rows if m.kind == MessageKind.USER]
    attempts: dict[int, list[Turn]] = {}
    if user_ids:
        turns = (
            Turn.objects.filter(user_message_id__in=user_ids)
            .select_related("triggered_by")
            .only(
                "id", "user_message_id", "attempt", "status", "error_code", "error_message",
                "trigger", "created_at", "finished_at", "latency_ms", "triggered_by__username",
            )
            .order_by("attempt", "created_at")
        )
        for turn in turns:
            attempts.setdefault(turn.user_message_id, []).append(turn)
    outputs = {m.call_id: m for m in rows if m.kind == MessageKind.FUNCTION_OUTPUT and m.call_id}
    calls = {m.call_id for m in rows if m.kind == MessageKind.FUNCTION_CALL and m.call_id}
    entries = []
    for message in rows:
        if message.kind == MessageKind.FUNCTION_OUTPUT and message.call_id in calls:
            continue
        entry = TranscriptEntry(message=message, attempts=attempts.get(message.pk, []))
        if message.kind == MessageKind.FUNCTION_CALL:
            entry.output = outputs.get(message.call_id)
        elif message.kind == MessageKind.FUNCTION_OUTPUT:
            entry.output = message  # its call is on an earlier page
        entries.append(entry)
    return TranscriptPage(
        entries=entries,
        first_seq=rows[0].seq if rows else None,
        last_seq=rows[-1].seq if rows else None,
        has_earlier=has_earlier,
    )


def latest_failed_turns(conversation_ids: list[Any] | QuerySet) -> QuerySet[Turn]:
    """Failed turns that are still the latest attempt for their customer message (what
    "retry" applies to), oldest first."""
    later = Turn.objects.filter(user_message=OuterRef("user_message"), attempt__gt=OuterRef("attempt"))
    return (
        Turn.objects.filter(conversation_id__in=conversation_ids, status=TurnStatus.FAILED)
        .filter(~Exists(later))
        .order_by("created_at")
    )


def recent_staff_actions(conversation: Conversation, limit: int = 15) -> list[StaffAction]:
    return list(
        StaffAction.objects.filter(conversation=conversation)
        .select_related("actor")
        .order_by("-created_at")[:limit]
    )


def conversation_facts(conversation: Conversation, limit: int = 100) -> list[CustomerFact]:
    """The conversation's customer facts, oldest first, with who last edited each."""
    return list(CustomerFact.objects.filter(conversation=conversation).select_related("author")
                .order_by("created_at", "id")[:limit])


def conversation_ratings(conversation: Conversation, limit: int = 20) -> list[CsatRating]:
    """The customer's ratings of the conversation, newest resolution first."""
    return list(CsatRating.objects.filter(conversation=conversation).select_related("staff")
                .order_by("-resolution", "-id")[:limit])


@dataclass
class TurnAudit:
    turn: Turn
    attempts: list[Turn]
    produced: list[Message]
    history: list[dict[str, Any]]
    replays: list[Replay]

    @property
    def is_latest(self) -> bool:
        return self.attempts[-1].pk == self.turn.pk if self.attempts else True

    @property
    def answer(self) -> str:
        return "\n\n".join(m.text for m in self.produced if m.kind == MessageKind.ASSISTANT)


def turn_audit(turn_id: Any) -> TurnAudit:
    """Everything the audit page shows about one turn, in five queries."""
    turn = Turn.objects.select_related(
        "conversation", "agent", "user_message", "triggered_by", "retry_of"
    ).get(pk=turn_id)
    attempts = list(
        Turn.objects.filter(user_message_id=turn.user_message_id)
        .select_related("triggered_by")
        .defer("requests", "history", "partial_text")
        .order_by("attempt", "created_at")
    )
    produced = list(Message.objects.filter(turn=turn).order_by("seq"))
    ids = [entry["message_id"] for entry in turn.history if isinstance(entry, dict) and entry.get("message_id") is not None]
    previews: dict[Any, tuple[str, str, str]] = {
        pk: (kind, text, tool_name)
        for pk, kind, text, tool_name in Message.objects.filter(pk__in=ids).values_list(
            "pk", "kind", "text", "tool_name"
        )
    }
    history = []
    fact_ids = [e["fact_id"] for e in turn.history if isinstance(e, dict) and e.get("fact_id")]
    facts = CustomerFact.objects.in_bulk(fact_ids) if fact_ids else {}
    for entry in turn.history:
        if not isinstance(entry, dict):
            continue
        if entry.get("reason") == "fact":
            # A customer fact (its text now; the request above holds what was sent).
            fact = facts.get(entry.get("fact_id"))
            history.append({**entry, "preview": fact.text[:160] if fact else "(fact since deleted)", "present": True})
            continue
        if entry.get("message_id") is None and entry.get("reason") == "recall note":
            # Not a stored item: the selector's own note that opens a recalled block.
            history.append({**entry, "preview": RECALL_NOTE[:160], "present": True})
            continue
        kind, text, tool_name = previews.get(entry.get("message_id"), ("", "", ""))
        history.append({**entry, "preview": (tool_name or text)[:160], "present": bool(kind)})
    replays = list(Replay.objects.filter(turn=turn).select_related("actor", "agent").order_by("-created_at")[:20])
    return TurnAudit(turn=turn, attempts=attempts, produced=produced, history=history, replays=replays)


def pretty_json(value: Any) -> str:
    """Indented JSON for display; a string that holds JSON is decoded first."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def export_items(conversation: Conversation) -> Iterator[Message]:
    """Every item, in order, streamed from the database in chunks."""
    return Message.objects.filter(conversation=conversation).order_by("seq").iterator(chunk_size=500)
