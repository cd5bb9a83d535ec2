"""The history selector: which stored items a turn sends to the model, and why.

Contract, for a turn answering `current` under `budget` tokens (each item costs
exactly what is sent for it, `tokens.sent_item_tokens`: its stored token count from the
model's real encoding, what the request adds around it — the staff prefix, a call's
function name and call id, an output's call id, an assistant item's phase — and a
fixed per-item framing overhead):
- the current user message is always sent (reason "current"), last;
- the newest exchanges come first (reason "recent"), newest first, up to a share of the
  budget, stopping at the first one that does not fit so recency stays contiguous;
- then older items retrieved for relevance to the current message (reason "retrieved",
  with the retriever's score) fill what is left, best first;
- whatever budget still remains goes to further recent items, newest first, until the
  budget is full or `FILL_MISSES` older units in a row do not fit;
- a function call and its output are one unit (placed where the call is): both or
  neither, and an unpaired call or output is never sent (the API rejects it);
- internal notes are never sent, nor customer messages that came after `current`
  (they are answered by their own turns); answers the model gave to earlier messages
  after `current` was stored (two quick messages) are sent, so the second turn sees
  the first answer;
- the result is in chronological (`seq`) order, with `current` last; the one exception
  is the recalled block of a carried turn (below), which follows the carried items.

Stable prefix (prompt caching): given the previous turn's selection (`previous`, its
recorded explanation), the selector first tries to send exactly that selection again,
in the same order, followed by what came after it (the previous message, its answer,
new items) and `current`. Then the request starts with the previous request's prompt,
which the provider has cached. This holds while it fits the budget less
`RECALL_SHARE`; when it does not, the selection is rebuilt from scratch under
`REBUILD_SHARE` of the budget (recent, retrieved, fill, as above), leaving room for the
following turns to extend it again. Extended items keep their recorded reason and
score; new ones are "recent". A carried item that is gone, unpaired, or newer than
`current` (a retry of an older message) forces a rebuild.

Recall on carried turns: retrieval still runs for every message. The items retrieved
for `current` that the carried selection lacks (and whose content it does not already
carry: a repeated question's earlier copy adds nothing) are sent, best first while they
fit the rest of the budget, in a recalled block after the carried items and before
`current`: reason "recalled", with the retriever's score, chronological among
themselves, pairs whole, opened by `RECALL_NOTE` (a developer message saying they are
earlier parts of the conversation; reason "recall note", no message id, its tokens
counted in the budget). The block is for its turn only: the next turn carries the
selection without it, so the cached prefix (everything before the block) is unchanged.
Without it, a question about something said long ago went unanswered until a rebuild
(`manage.py bench_history_prefix` measures both; `RECALL_SHARE = 0` turns it off).

Items are read newest first in pages, so the cost depends on the budget, not on the
conversation's length; token counts are never recomputed here. The retriever is
pluggable (`conversations.retrieval.Retriever`); the default scores keyword overlap in SQL.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from conversations.agent.history_facts import facts_section
from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS, count_tokens, get_encoding
from conversations.models import Message, Turn
from conversations.models.message import MessageKind
from conversations.retrieval import MODEL_KINDS, Retriever, default_retriever

RECENT_SHARE = 0.6
PAGE_SIZE = 200
# The first page is smaller: a selection at an ordinary budget (800) sends a dozen recent
# items, and reading 200 rows with their text was a quarter of its time at 10,000 items.
FIRST_PAGE = 48
FILL_MISSES = 32
RETRIEVE_LIMIT = 50
REBUILD_SHARE = 0.5
# Items retrieved for the current message that a carried selection lacks are sent after
# it, in up to this share of the budget (reason "recalled", for this turn only); the
# carried part must fit the rest. 0 turns it off: retrieval then runs only at rebuilds.
RECALL_SHARE = 0.05
# The retriever's query carries the text of the last `CONTEXT_ITEMS` messages before the
# current one (newest first), so "did that happen?" reaches what "that" refers to.
CONTEXT_ITEMS = 4
_CONTEXT_KINDS = (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF)
# The alternative measured by `bench_history_prefix` (off by default, see the figures
# in docs/architecture.md): rebuild a carried selection when one of the
# `RECALL_CHECK_TOP` best items a fresh selection retrieves (None: any), scoring at least
# `RECALL_CHECK_MARGIN` times their median, is missing from it.
RECALL_CHECK_TOP: int | None = 0
RECALL_CHECK_MARGIN = 0.0
# Sent first in a recalled block (a developer message), so the model reads what follows
# as older parts of the conversation, not as what was said last.
RECALL_NOTE = (
    "The next messages are earlier parts of this conversation, recalled because they may "
    "bear on the customer's latest message. They are not new."
)


@dataclass
class SelectedItem:
    message_id: int | None  # None for the recalled block's note and for facts
    seq: int | None
    kind: str
    tokens: int
    reason: str
    score: float | None = None
    fact_id: int | None = None  # a customer fact's (reason "fact")

    def explain(self) -> dict[str, Any]:
        entry = {
            "message_id": self.message_id,
            "seq": self.seq,
            "kind": self.kind,
            "tokens": self.tokens,
            "reason": self.reason,
            "score": self.score,
        }
        if self.fact_id is not None:
            entry["fact_id"] = self.fact_id
        return entry


@dataclass
class HistorySelection:
    items: list[SelectedItem]
    input_items: list[dict[str, Any]]
    budget: int
    tokens: int
    considered: int = 0
    explanation: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """The selected items as `Message` rows, in send order (one query)."""
        ids = [item.message_id for item in self.items if item.message_id is not None]
        by_id = Message.objects.in_bulk(ids)
        return [by_id[pk] for pk in ids]


class _Row(NamedTuple):
    id: int
    seq: int
    kind: str
    token_count: int
    call_id: str
    text: str
    tool_name: str
    tool_arguments: str
    metadata: dict[str, Any]
    turn_id: UUID | None  # the turn that produced it, if any


_COLUMNS = (
    "id", "seq", "kind", "token_count", "call_id", "text", "tool_name", "tool_arguments", "metadata", "turn_id",
)


def _cost(row: _Row) -> int:
    """Exactly what the item costs as sent (`sent_item_tokens`): its stored token count
    (text and arguments, the model's encoding) plus what the request adds around it:
    the staff prefix, a call's function name and call id, an output's call id, an
    assistant item's phase; the larger of the two encodings for those additions."""
    if row.kind == MessageKind.STAFF:
        return ITEM_OVERHEAD_TOKENS + max(
            count_tokens(_row_input_item(row)["content"], _encoding(name)) for name in _ENCODINGS
        )
    extra = 0
    if row.kind == MessageKind.FUNCTION_CALL:
        extra = _short_tokens(row.tool_name) + _short_tokens(row.call_id)
    elif row.kind == MessageKind.FUNCTION_OUTPUT:
        extra = _short_tokens(row.call_id)
    elif row.kind == MessageKind.ASSISTANT and (row.metadata or {}).get("phase"):
        extra = _short_tokens(str(row.metadata["phase"]))
    return row.token_count + ITEM_OVERHEAD_TOKENS + extra


_ENCODINGS = ("o200k_base", "cl100k_base")


@functools.cache
def _encoding(name: str) -> Any:
    return get_encoding(name)


@functools.lru_cache(maxsize=4096)
def _short_tokens(text: str) -> int:
    return max(count_tokens(text, _encoding(name)) for name in _ENCODINGS) if text else 0


@dataclass
class _Unit:
    rows: tuple[_Row, ...]
    tokens: int

    @classmethod
    def of(cls, *rows: _Row) -> _Unit:
        return cls(rows, sum(_cost(r) for r in rows))


def _fetch(conversation_id: UUID | str, **filters: Any) -> list[_Row]:
    return [
        _Row._make(values)
        for values in Message.objects.filter(conversation_id=conversation_id, kind__in=MODEL_KINDS)
        .filter(**filters)
        .order_by()
        .values_list(*_COLUMNS)
    ]


class _Scanner:
    """The conversation's sendable units for `current`, newest first, read in pages."""

    def __init__(self, conversation_id: UUID | str, current: Message, *, after_seq: int | None = None) -> None:
        self.conversation_id = conversation_id
        self.current = current
        self.after_seq = after_seq  # read only items newer than this (a unit older than it is never whole)
        self.considered = 0

    def _visible(self, row: _Row, answered: dict[Any, int]) -> bool:
        if row.id == self.current.pk:
            return False
        if row.seq < self.current.seq:
            return True
        # Stored after the current message: only answers to earlier messages are sent.
        return row.kind != MessageKind.USER and answered.get(row.turn_id, self.current.seq) < self.current.seq

    def _answered_seqs(self, page: list[_Row]) -> dict[Any, int]:
        """For the turns that produced items newer than `current` (rare: quick messages),
        the seq of the message each turn answered."""
        turns = {row.turn_id for row in page if row.seq > self.current.seq and row.turn_id}
        if not turns:
            return {}
        return dict(Turn.objects.filter(pk__in=turns).values_list("pk", "user_message__seq"))

    def __iter__(self) -> Iterator[_Unit]:
        outputs: dict[str, _Row] = {}
        query = Message.objects.filter(conversation_id=self.conversation_id, kind__in=MODEL_KINDS)
        if self.after_seq is not None:
            query = query.filter(seq__gt=self.after_seq)
        below: int | None = None
        size = FIRST_PAGE
        while True:
            page_query = query if below is None else query.filter(seq__lt=below)
            page = [_Row._make(v) for v in page_query.order_by("-seq").values_list(*_COLUMNS)[:size]]
            self.considered += len(page)
            answered = self._answered_seqs(page)
            for row in page:
                if not self._visible(row, answered):
                    continue
                if row.kind == MessageKind.FUNCTION_OUTPUT:
                    outputs.setdefault(row.call_id, row)
                elif row.kind == MessageKind.FUNCTION_CALL:
                    output = outputs.pop(row.call_id, None)
                    if output is not None:
                        yield _Unit.of(row, output)
                else:
                    yield _Unit.of(row)
            if len(page) < size:
                return
            below = page[-1].seq
            size = PAGE_SIZE


def _retrieved_units(conversation_id: UUID | str, hits: list[tuple[int, float]]) -> Iterator[tuple[_Unit, float]]:
    """The units of the retriever's hits, best first; a call or output comes with its
    partner, or not at all."""
    if not hits:
        return
    rows = {row.id: row for row in _fetch(conversation_id, pk__in=[pk for pk, _ in hits])}
    pairing = {r.call_id for r in rows.values() if r.kind in (MessageKind.FUNCTION_CALL, MessageKind.FUNCTION_OUTPUT)}
    partners: dict[tuple[str, str], _Row] = {}
    if pairing:
        for partner in _fetch(
            conversation_id, call_id__in=pairing,
            kind__in=[MessageKind.FUNCTION_CALL, MessageKind.FUNCTION_OUTPUT],
        ):
            partners.setdefault((partner.kind, partner.call_id), partner)
    for pk, score in hits:
        row = rows.get(pk)
        if row is None:
            continue
        if row.kind in (MessageKind.FUNCTION_CALL, MessageKind.FUNCTION_OUTPUT):
            call = partners.get((MessageKind.FUNCTION_CALL, row.call_id))
            output = partners.get((MessageKind.FUNCTION_OUTPUT, row.call_id))
            if call is None or output is None:
                continue
            yield _Unit.of(call, output), score
        else:
            yield _Unit.of(row), score


def select_history(
    *,
    conversation_id: UUID | str,
    current: Message,
    budget: int,
    retriever: Retriever | None = None,
    previous: list[dict[str, Any]] | None = None,
) -> HistorySelection:
    """Select the items to send for a turn answering `current`; see the module contract.
    `previous` is the previous turn's recorded selection (`Turn.history`), if any.
    The conversation's customer facts come first (`history_facts`), in their share of
    the budget; the history gets the rest."""
    facts = facts_section(conversation_id, budget)
    if not facts:
        return _select_history(conversation_id, current, budget, retriever, previous)
    used = sum(fact.tokens for fact in facts)
    selection = _select_history(conversation_id, current, budget - used, retriever, previous)
    head = [SelectedItem(None, None, "developer", fact.tokens, "fact", fact_id=fact.fact_id)
            for fact in facts]
    items = [*head, *selection.items]
    return HistorySelection(
        items=items, input_items=[*(fact.input_item for fact in facts), *selection.input_items], budget=budget,
        tokens=selection.tokens + used, considered=selection.considered,
        explanation=[item.explain() for item in items],
    )


def _select_history(
    conversation_id: UUID | str, current: Message, budget: int, retriever: Retriever | None,
    previous: list[dict[str, Any]] | None,
) -> HistorySelection:
    if previous:
        carried_budget = budget - int(budget * RECALL_SHARE)
        extended = _extend_previous(conversation_id, current, carried_budget, previous)
        if extended is not None:
            extended.budget = budget
        if extended is not None and not _recall_missing(conversation_id, current, budget, retriever, extended):
            return _with_recalled(conversation_id, current, budget, retriever, extended) if RECALL_SHARE else extended
        rebuilt = _select(conversation_id, current, max(1, int(budget * REBUILD_SHARE)), retriever)
        rebuilt.budget = budget
        return rebuilt
    return _select(conversation_id, current, budget, retriever)


def _recall_missing(
    conversation_id: UUID | str, current: Message, budget: int, retriever: Retriever | None, extended: HistorySelection
) -> bool:
    """Whether a fresh selection for `current` retrieves a strong hit that the carried
    selection lacks: one of its `RECALL_CHECK_TOP` best-scored "retrieved" items, scoring
    at least `RECALL_CHECK_MARGIN` times the median retrieved score, whose content is not
    already carried (a repeated question's earlier copy is as good as the one carried)."""
    if RECALL_CHECK_TOP == 0:
        return False
    fresh = _select(conversation_id, current, budget, retriever)
    hits = [(item, sent) for item, sent in zip(fresh.items, fresh.input_items, strict=True)
            if item.reason == "retrieved"]
    if not hits:
        return False
    scores = sorted(item.score or 0.0 for item, _ in hits)
    floor = RECALL_CHECK_MARGIN * scores[len(scores) // 2]
    hits.sort(key=lambda pair: -(pair[0].score or 0.0))
    strong = hits if RECALL_CHECK_TOP is None else hits[:RECALL_CHECK_TOP]
    carried_ids = {item.message_id for item in extended.items}
    carried_content = {_content(sent) for sent in extended.input_items}
    return any(
        item.message_id not in carried_ids and (item.score or 0.0) >= floor and _content(sent) not in carried_content
        for item, sent in strong
    )


def _with_recalled(
    conversation_id: UUID | str, current: Message, budget: int, retriever: Retriever | None, extended: HistorySelection
) -> HistorySelection:
    """`extended` with the items retrieved for `current` that it lacks, best first while
    they fit `budget`, placed (chronologically among themselves) before `current`."""
    retriever = retriever or default_retriever()
    remaining = budget - extended.tokens - recall_note_tokens()
    chosen = {item.message_id for item in extended.items}
    # A repeated question's earlier copy says nothing the carried copy does not.
    contents = {_content(sent) for sent in extended.input_items}
    recalled: list[tuple[_Row, float]] = []
    hits = retriever.retrieve(
        conversation_id=conversation_id, query=current.text, before_seq=current.seq, limit=RETRIEVE_LIMIT,
        context=[_content(sent) for sent in reversed(extended.input_items[-1 - CONTEXT_ITEMS : -1])],
    )
    for unit, score in _retrieved_units(conversation_id, hits):
        if remaining <= ITEM_OVERHEAD_TOKENS:
            break
        if any(row.id in chosen for row in unit.rows) or unit.tokens > remaining:
            continue
        if len(unit.rows) == 1 and _content(_row_input_item(unit.rows[0])) in contents:
            continue
        remaining -= unit.tokens
        chosen.update(row.id for row in unit.rows)
        recalled += [(row, score) for row in unit.rows]
    if not recalled:
        return extended
    recalled.sort(key=lambda pair: pair[0].seq)
    note = SelectedItem(None, None, "developer", recall_note_tokens(), "recall note")
    block = [SelectedItem(row.id, row.seq, row.kind, _cost(row), "recalled", score)
             for row, score in recalled]
    items = [*extended.items[:-1], note, *block, extended.items[-1]]
    input_items = [
        *extended.input_items[:-1],
        {"type": "message", "role": "developer", "content": RECALL_NOTE},
        *(_row_input_item(row) for row, _ in recalled),
        extended.input_items[-1],
    ]
    return HistorySelection(
        items=items, input_items=input_items, budget=budget, tokens=sum(item.tokens for item in items),
        considered=extended.considered + len(hits), explanation=[item.explain() for item in items],
    )


@functools.cache
def recall_note_tokens() -> int:
    """The recall note's cost: its tokens in the larger of the two encodings the
    platform's models use, plus the per-item framing."""
    return ITEM_OVERHEAD_TOKENS + max(
        count_tokens(RECALL_NOTE, get_encoding(name)) for name in ("o200k_base", "cl100k_base")
    )


def _content(input_item: dict[str, Any]) -> str:
    return str(input_item.get("content") or input_item.get("arguments") or input_item.get("output") or "")


def _extend_previous(
    conversation_id: UUID | str, current: Message, budget: int, previous: list[dict[str, Any]]
) -> HistorySelection | None:
    """The previous selection, then what came after it, then `current`; None when that
    does not fit the budget or the previous selection cannot be sent again."""
    recorded = {
        entry["message_id"]: entry for entry in previous
        if entry.get("message_id") not in (current.pk, None) and entry.get("reason") not in ("recalled", "fact")
    }
    if not recorded:
        return None
    rows = {row.id: row for row in _fetch(conversation_id, pk__in=list(recorded))}
    if len(rows) != len(recorded) or any(row.seq > current.seq for row in rows.values()):
        return None
    calls = {r.call_id for r in rows.values() if r.kind == MessageKind.FUNCTION_CALL}
    outputs = {r.call_id for r in rows.values() if r.kind == MessageKind.FUNCTION_OUTPUT}
    if calls != outputs:
        return None
    carried = sorted(rows.values(), key=lambda row: row.seq)
    last = carried[-1].seq
    # Only what came after the carried items: a page of 200 rows read to find the two
    # or three new ones was most of this function's cost in a long conversation. Units
    # come newest first, so those wholly after `last` are exactly the ones read here.
    scanner = _Scanner(conversation_id, current, after_seq=last)
    newer: list[_Row] = []
    for unit in scanner:
        if unit.rows[0].seq <= last:
            break
        newer.extend(unit.rows)
    newer.sort(key=lambda row: row.seq)
    current_tokens = current.token_count + ITEM_OVERHEAD_TOKENS
    tokens = current_tokens + sum(_cost(row) for row in (*carried, *newer))
    if tokens > budget:
        return None
    items = []
    for row in carried:
        entry = recorded[row.id]
        reason = entry["reason"] if entry.get("reason") not in (None, "current") else "recent"
        items.append(SelectedItem(row.id, row.seq, row.kind, _cost(row), reason,
                                  entry.get("score")))
    items += [SelectedItem(row.id, row.seq, row.kind, _cost(row), "recent")
              for row in newer]
    items.append(SelectedItem(current.pk, current.seq, current.kind, current_tokens, "current"))
    input_items = [_row_input_item(row) for row in (*carried, *newer)]
    input_items.append(to_input_item(current))
    return HistorySelection(
        items=items, input_items=input_items, budget=budget, tokens=tokens,
        considered=len(rows) + scanner.considered, explanation=[item.explain() for item in items],
    )


def _select(
    conversation_id: UUID | str, current: Message, budget: int, retriever: Retriever | None
) -> HistorySelection:
    retriever = retriever or default_retriever()
    current_tokens = current.token_count + ITEM_OVERHEAD_TOKENS
    remaining = budget - current_tokens
    chosen: dict[int, tuple[_Row, SelectedItem]] = {}

    def take(unit: _Unit, reason: str, score: float | None = None) -> bool:
        nonlocal remaining
        if unit.rows[0].id in chosen or unit.tokens > remaining:
            return False
        remaining -= unit.tokens
        for row in unit.rows:
            item = SelectedItem(row.id, row.seq, row.kind, _cost(row), reason, score)
            chosen[row.id] = (row, item)
        return True

    scanner = _Scanner(conversation_id, current)
    units = iter(scanner)
    # 1. Newest exchanges, up to the recent share; stop at the first that does not fit.
    recent_cap = remaining - int(budget * (1 - RECENT_SHARE))
    held: _Unit | None = None
    oldest_recent = current.seq
    context: list[str] = []  # the last exchanges' text, newest first: part of the query
    for unit in units:
        if len(context) < CONTEXT_ITEMS:
            context += [_content(_row_input_item(row)) for row in unit.rows if row.kind in _CONTEXT_KINDS]
        if unit.tokens > recent_cap:
            held = unit
            break
        take(unit, "recent")
        recent_cap -= unit.tokens
        oldest_recent = min(oldest_recent, unit.rows[0].seq)
    # 2. Older items retrieved for relevance.
    if held is not None and remaining > 0:
        hits = retriever.retrieve(
            conversation_id=conversation_id, query=current.text, before_seq=oldest_recent,
            limit=RETRIEVE_LIMIT, context=context[:CONTEXT_ITEMS],
        )
        for unit, score in _retrieved_units(conversation_id, hits):
            take(unit, "retrieved", score)
    # 3. Any budget left goes to further recent items.
    if held is not None:
        misses = 0
        for unit in _chain(held, units):
            if remaining <= ITEM_OVERHEAD_TOKENS or misses >= FILL_MISSES:
                break
            if unit.rows[0].id in chosen:
                continue
            misses = 0 if take(unit, "recent") else misses + 1

    ordered = sorted(chosen.values(), key=lambda pair: pair[0].seq)
    items = [item for _, item in ordered]
    items.append(SelectedItem(current.pk, current.seq, current.kind, current_tokens, "current"))
    input_items = [_row_input_item(row) for row, _ in ordered]
    input_items.append(to_input_item(current))
    return HistorySelection(
        items=items,
        input_items=input_items,
        budget=budget,
        tokens=sum(item.tokens for item in items),
        considered=scanner.considered,
        explanation=[item.explain() for item in items],
    )


def _chain(first: _Unit, rest: Iterable[_Unit]) -> Iterator[_Unit]:
    yield first
    yield from rest


def input_item(
    *, kind: str, text: str = "", tool_name: str = "", call_id: str = "", tool_arguments: str = "",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One stored item as a Responses API input item."""
    if kind == MessageKind.USER:
        return {"type": "message", "role": "user", "content": text}
    if kind == MessageKind.ASSISTANT:
        item = {"type": "message", "role": "assistant", "content": text}
        phase = (metadata or {}).get("phase")
        if phase:  # passed back unchanged (gpt-5.3-codex, gpt-5.4 and later rely on it)
            item["phase"] = phase
        return item
    if kind == MessageKind.STAFF:
        name = (metadata or {}).get("author_name", "A support agent")
        return {
            "type": "message",
            "role": "developer",
            "content": f"{name} (a human support agent) replied to the customer: {text}",
        }
    if kind == MessageKind.FUNCTION_CALL:
        return {"type": "function_call", "call_id": call_id, "name": tool_name, "arguments": tool_arguments}
    if kind == MessageKind.FUNCTION_OUTPUT:
        return {"type": "function_call_output", "call_id": call_id, "output": text}
    raise ValueError(f"{kind} items are never sent to the model")


def to_input_item(message: Message) -> dict[str, Any]:
    return input_item(
        kind=message.kind, text=message.text, tool_name=message.tool_name, call_id=message.call_id,
        tool_arguments=message.tool_arguments, metadata=message.metadata,
    )


def _row_input_item(row: _Row) -> dict[str, Any]:
    return input_item(
        kind=row.kind, text=row.text, tool_name=row.tool_name, call_id=row.call_id,
        tool_arguments=row.tool_arguments, metadata=row.metadata,
    )
