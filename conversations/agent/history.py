"""The history selector: which stored items a turn sends to the model, and why.

Contract, for a turn answering `current` under `budget` tokens (counted with the model's
real encoding, plus a fixed per-item framing overhead):
- the current user message is always sent (reason "current");
- the newest exchanges come next (reason "recent"), newest first, up to a share of
  the budget;
- then older items retrieved for relevance to the current message (reason
  "retrieved", with the retriever's score) fill what is left, best first;
- whatever budget still remains goes to further recent items (from the "recent window",
  the newest items whose tokens just exceed the budget);
- a function call and its output are one unit: both or neither, and an unpaired call
  or output is never sent (the API rejects it);
- internal notes are never sent; the result is in chronological (`seq`) order.

The retriever is pluggable (`Retriever`). `KeywordRetriever` (keyword overlap in SQL) is
the fallback; the knowledge-base app installs a full-text one (FTS5 bm25 / PostgreSQL
ts_rank) with `set_default_retriever`. Selection reads only the recent window and the
retrieved rows, so its cost does not grow with the length of the conversation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db.models import Q

from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS
from conversations.models import Message
from conversations.models.message import MessageKind

MODEL_KINDS = (
    MessageKind.USER,
    MessageKind.ASSISTANT,
    MessageKind.FUNCTION_CALL,
    MessageKind.FUNCTION_OUTPUT,
    MessageKind.STAFF,
)
RECENT_SHARE = 0.6


class Retriever(Protocol):
    """Finds older items relevant to a query. A retriever that keeps its own index may
    also define `index(messages)`; `items_append` calls it in the same transaction as
    the items are stored."""

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int
    ) -> list[tuple[int, float]]:
        """(message id, relevance score) pairs for items older than `before_seq`."""


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{2,}")
_STOP_TEXT = (
    "the and for you your are was were this that with have has had not but can could would "
    "should what when where which who how why about from they them their there here then than "
    "into onto our ours its it's i'm i've don't didn't does did just also any all some more most "
    "very been being will shall may might must need want like know tell please thanks thank hello "
    "help order"
)
_STOP = frozenset(_STOP_TEXT.split())


def keywords(text: str, limit: int = 12) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        word = word.strip("._-")
        if len(word) >= 3 and word not in _STOP:
            seen.setdefault(word, None)
    # Longer words and numbers are the most specific; keep those when there are many.
    ranked = sorted(seen, key=lambda w: (not any(c.isdigit() for c in w), -len(w)))
    return ranked[:limit]


class KeywordRetriever:
    """Scores older items by how many of the query's keywords they contain, weighting
    rare keywords higher (an IDF over this conversation). Runs in SQL with LIKE."""

    def retrieve(
        self, *, conversation_id: Any, query: str, before_seq: int, limit: int
    ) -> list[tuple[int, float]]:
        words = keywords(query)
        if not words:
            return []
        condition = Q()
        for word in words:
            condition |= Q(text__icontains=word) | Q(tool_arguments__icontains=word)
        rows = list(
            Message.objects.filter(
                condition, conversation_id=conversation_id, seq__lt=before_seq, kind__in=MODEL_KINDS
            )
            .order_by("-seq")
            .values_list("id", "text", "tool_arguments")[: limit * 4]
        )
        if not rows:
            return []
        lowered = [(pk, (text + " " + args).lower()) for pk, text, args in rows]
        document_frequency = {w: sum(1 for _, t in lowered if w in t) for w in words}
        scored = []
        for pk, text in lowered:
            score = sum(
                math.log(1 + len(lowered) / document_frequency[w]) for w in words if w in text
            )
            if score > 0:
                scored.append((pk, round(score, 4)))
        scored.sort(key=lambda pair: -pair[1])
        return scored[:limit]


@dataclass
class SelectedItem:
    message_id: int
    seq: int
    kind: str
    tokens: int
    reason: str
    score: float | None = None

    def explain(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "seq": self.seq,
            "kind": self.kind,
            "tokens": self.tokens,
            "reason": self.reason,
            "score": self.score,
        }


@dataclass
class HistorySelection:
    items: list[SelectedItem]
    messages: list[Message]
    budget: int
    tokens: int
    considered: int = 0
    explanation: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Unit:
    rows: list[tuple[int, int, str, int]]  # (id, seq, kind, tokens)

    @property
    def tokens(self) -> int:
        return sum(r[3] + ITEM_OVERHEAD_TOKENS for r in self.rows)

    @property
    def last_seq(self) -> int:
        return max(r[1] for r in self.rows)


def _units(rows: list[tuple[int, int, str, int, str]]) -> list[_Unit]:
    """Group rows (ascending seq) into units; call/output pairs become one unit and
    unpaired calls or outputs are dropped."""
    calls: dict[str, tuple[int, int, str, int]] = {}
    outputs: dict[str, tuple[int, int, str, int]] = {}
    for pk, seq, kind, tokens, call_id in rows:
        if kind == MessageKind.FUNCTION_CALL:
            calls[call_id] = (pk, seq, kind, tokens)
        elif kind == MessageKind.FUNCTION_OUTPUT:
            outputs[call_id] = (pk, seq, kind, tokens)
    units: list[_Unit] = []
    for pk, seq, kind, tokens, call_id in rows:
        if kind == MessageKind.FUNCTION_CALL:
            if call_id in outputs:
                units.append(_Unit([(pk, seq, kind, tokens), outputs[call_id]]))
        elif kind == MessageKind.FUNCTION_OUTPUT:
            continue
        else:
            units.append(_Unit([(pk, seq, kind, tokens)]))
    units.sort(key=lambda u: u.last_seq)
    return units


_ROW_FIELDS = ("id", "seq", "kind", "token_count", "call_id")
WINDOW_CHUNK = 256
PARTNER_REACH = 64  # seqs searched either side of an item for its call/output partner


def _model_items(conversation_id: Any) -> Any:
    return Message.objects.filter(conversation_id=conversation_id, kind__in=MODEL_KINDS)


def _recent_window(conversation_id: Any, before_seq: int, budget: int) -> list[tuple[Any, ...]]:
    """The newest items before `before_seq` (ascending), just enough of them to exceed
    the budget, plus the calls of any outputs whose call fell outside. Only rows of ids,
    kinds and token counts are read, in chunks, so a long conversation costs no more
    than a short one."""
    rows: list[tuple[Any, ...]] = []
    total = 0
    upper = before_seq
    while total <= budget:
        chunk = list(
            _model_items(conversation_id)
            .filter(seq__lt=upper)
            .order_by("-seq")
            .values_list(*_ROW_FIELDS)[:WINDOW_CHUNK]
        )
        rows.extend(chunk)
        total += sum(row[3] + ITEM_OVERHEAD_TOKENS for row in chunk)
        if len(chunk) < WINDOW_CHUNK:
            break
        upper = chunk[-1][1]
    rows.reverse()
    return _with_partners(conversation_id, rows)


def _with_partners(conversation_id: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`rows` plus the other half of any call/output pair they split, in seq order.

    A call and its output are stored by the same turn, so the partner is looked for
    among the neighbouring seqs first (an index range scan); only a partner not found
    there is looked up by call id."""
    calls = {r[4]: r for r in rows if r[2] == MessageKind.FUNCTION_CALL}
    outputs = {r[4]: r for r in rows if r[2] == MessageKind.FUNCTION_OUTPUT}
    missing = {
        call_id: row
        for call_id, row in (calls | outputs).items()
        if call_id not in calls or call_id not in outputs
    }
    if not missing:
        return rows
    have = {r[0] for r in rows}
    near = Q()
    for row in missing.values():
        near |= Q(seq__gte=row[1] - PARTNER_REACH, seq__lte=row[1] + PARTNER_REACH)
    pair_kinds = (MessageKind.FUNCTION_CALL, MessageKind.FUNCTION_OUTPUT)
    found = [
        r
        for r in Message.objects.filter(near, conversation_id=conversation_id, kind__in=pair_kinds)
        .order_by()
        .values_list(*_ROW_FIELDS)
        if r[4] in missing and r[0] not in have
    ]
    # Resolved: a row with the missing item's call id and the other kind was found.
    unresolved = set(missing) - {r[4] for r in found if r[2] != missing[r[4]][2]}
    if unresolved:
        found += [
            r
            for r in Message.objects.filter(
                conversation_id=conversation_id, kind__in=pair_kinds, call_id__in=unresolved
            )
            .order_by()
            .values_list(*_ROW_FIELDS)
            if r[0] not in have
        ]
    partners = {r[0]: r for r in found}
    return sorted([*rows, *partners.values()], key=lambda r: r[1])


def select_history(
    *,
    conversation_id: Any,
    current: Message,
    budget: int,
    retriever: Retriever | None = None,
) -> HistorySelection:
    """Select the items to send for a turn answering `current`; see the module contract.

    Cost does not grow with the conversation: recency reads only the newest rows that
    can fit the budget (the "recent window"), and retrieval reads only the rows the
    retriever returns. Further recent items (step 3) come from that window.
    """
    retriever = retriever or default_retriever()
    current_tokens = current.token_count + ITEM_OVERHEAD_TOKENS
    chosen: dict[int, SelectedItem] = {
        current.pk: SelectedItem(current.pk, current.seq, current.kind, current_tokens, "current")
    }
    remaining = budget - current_tokens
    rows = _recent_window(conversation_id, current.seq, budget)
    considered = len(rows) + 1
    units = _units(rows)
    unit_of = {row[0]: unit for unit in units for row in unit.rows}
    taken: set[int] = set()

    def take(unit: _Unit, reason: str, score: float | None = None) -> bool:
        nonlocal remaining
        if id(unit) in taken or unit.tokens > remaining:
            return False
        taken.add(id(unit))
        remaining -= unit.tokens
        for pk, seq, kind, tokens in unit.rows:
            chosen[pk] = SelectedItem(pk, seq, kind, tokens + ITEM_OVERHEAD_TOKENS, reason, score)
        return True

    # 1. Newest exchanges, up to the recent share; stop at the first unit that does not
    #    fit so recency stays contiguous.
    recent_cap = remaining - int(budget * (1 - RECENT_SHARE))
    index = len(units) - 1
    while index >= 0 and units[index].tokens <= recent_cap:
        unit = units[index]
        if take(unit, "recent"):
            recent_cap -= unit.tokens
        index -= 1
    oldest_recent = min(r[1] for r in units[index + 1].rows) if index + 1 < len(units) else current.seq
    # 2. Older items retrieved for relevance (their rows are read only when they lie
    #    outside the window). The window holds more than the budget unless it reaches
    #    the start of the conversation, so nothing older exists when all of it is recent.
    if index >= 0 and remaining > 0:
        hits = retriever.retrieve(
            conversation_id=conversation_id, query=current.text, before_seq=oldest_recent, limit=50
        )
        outside = [pk for pk, _ in hits if pk not in unit_of]
        if outside:
            # By primary key only: adding the conversation filter lets SQLite pick the
            # (conversation, kind, seq) index and scan the whole conversation.
            fetched = Message.objects.filter(pk__in=outside).order_by().values_list(
                "conversation_id", "kind", *_ROW_FIELDS
            )
            conversation_key = str(conversation_id).replace("-", "")
            extra = _with_partners(
                conversation_id,
                sorted(
                    (
                        r[2:]
                        for r in fetched
                        if str(r[0]).replace("-", "") == conversation_key and r[1] in MODEL_KINDS
                    ),
                    key=lambda r: r[1],
                ),
            )
            considered += len(extra)
            for unit in _units(extra):
                for row in unit.rows:
                    unit_of.setdefault(row[0], unit)
        for pk, score in hits:
            unit = unit_of.get(pk)
            if unit is not None:
                take(unit, "retrieved", score)
    # 3. Any budget left goes to further recent items.
    while index >= 0 and remaining > 0:
        take(units[index], "recent")
        index -= 1

    items = sorted(chosen.values(), key=lambda item: item.seq)
    by_id = Message.objects.in_bulk([item.message_id for item in items])
    messages = [by_id[item.message_id] for item in items]
    used = sum(item.tokens for item in items)
    return HistorySelection(
        items=items,
        messages=messages,
        budget=budget,
        tokens=used,
        considered=considered,
        explanation=[item.explain() for item in items],
    )


_default_retriever: Retriever = KeywordRetriever()


def default_retriever() -> Retriever:
    return _default_retriever


def set_default_retriever(retriever: Retriever) -> None:
    """Replace the retriever used when none is passed (the knowledge-base app does)."""
    global _default_retriever
    _default_retriever = retriever


def to_input_item(message: Message) -> dict[str, Any]:
    """One stored item as a Responses API input item."""
    if message.kind == MessageKind.USER:
        return {"type": "message", "role": "user", "content": message.text}
    if message.kind == MessageKind.ASSISTANT:
        return {"type": "message", "role": "assistant", "content": message.text}
    if message.kind == MessageKind.STAFF:
        name = (message.metadata or {}).get("author_name", "A support agent")
        return {
            "type": "message",
            "role": "developer",
            "content": f"{name} (a human support agent) replied to the customer: {message.text}",
        }
    if message.kind == MessageKind.FUNCTION_CALL:
        return {
            "type": "function_call",
            "call_id": message.call_id,
            "name": message.tool_name,
            "arguments": message.tool_arguments,
        }
    if message.kind == MessageKind.FUNCTION_OUTPUT:
        return {"type": "function_call_output", "call_id": message.call_id, "output": message.text}
    raise ValueError(f"{message.kind} items are never sent to the model")
