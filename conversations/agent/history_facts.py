"""The customer facts section of a turn's history: the conversation's `CustomerFact`s
(`conversations/services/facts.py` keeps them), each sent as one short developer
message at the start of the history, in at most `FACTS_SHARE` of the budget.

Which facts, when they do not all fit: staff's first (they wrote them down on purpose),
then promises, then tool results, then what the customer already tried; the newest of
each kind first. They are sent oldest first, so the section changes at its end when a
fact is added and a cached prompt prefix stays valid up to there. One query reads at
most `MAX_FACTS_READ` rows, however long the conversation.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple
from uuid import UUID

from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS, count_tokens, get_encoding
from conversations.conf import platform_setting
from conversations.models import CustomerFact, FactSource

MAX_FACTS_READ = 50
_PRIORITY: dict[str, int] = {FactSource.STAFF: 0, FactSource.NOTE: 0, FactSource.PROMISE: 1, FactSource.TOOL: 2, FactSource.TRIED: 3}
_LABEL: dict[str, str] = {FactSource.STAFF: "from staff", FactSource.NOTE: "from staff"}


class SentFact(NamedTuple):
    fact_id: int
    message_id: int | None  # the item it was kept from, if any
    input_item: dict[str, Any]
    tokens: int


def fact_content(source: str, text: str) -> str:
    label = _LABEL.get(source)
    return f"Customer fact ({label}): {text}" if label else f"Customer fact: {text}"


@functools.lru_cache(maxsize=4096)
def _tokens(content: str) -> int:
    return ITEM_OVERHEAD_TOKENS + max(count_tokens(content, get_encoding(name)) for name in ("o200k_base", "cl100k_base"))


def facts_section(conversation_id: UUID | str, budget: int) -> list[SentFact]:
    """The facts to send, in send order, costing at most `FACTS_SHARE` of `budget`."""
    cap = int(budget * float(platform_setting("FACTS_SHARE")))
    if cap <= ITEM_OVERHEAD_TOKENS:
        return []
    rows = list(
        CustomerFact.objects.filter(conversation_id=conversation_id)
        .order_by("-updated_at", "-id").values_list("id", "message_id", "source", "text")[:MAX_FACTS_READ]
    )
    rows.sort(key=lambda row: _PRIORITY.get(row[2], 4))  # stable: newest first within a kind
    chosen: list[SentFact] = []
    for fact_id, message_id, source, text in rows:
        content = fact_content(source, text)
        tokens = _tokens(content)
        if tokens > cap:
            continue
        cap -= tokens
        chosen.append(SentFact(fact_id, message_id, {"type": "message", "role": "developer", "content": content},
                               tokens))
    chosen.sort(key=lambda fact: fact.fact_id)
    return chosen
