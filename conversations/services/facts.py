"""Customer facts: the durable facts about a conversation's customer that every turn
sends in a small section of its own (`conversations/agent/history_facts.py`), so an
order number, a promised refund or what the customer already tried is never lost to
the history budget.

Kept automatically as items are stored (`facts_keep`, called by `items_append` inside
the writer's transaction):
- a tool's result, for the tools named in `FACT_TOOLS` (default `lookup_order`): its
  fields on one line; a later result for the same order (the same identifying field,
  or the same arguments) replaces it, unless staff edited it;
- a promise by the assistant or staff: a sentence with a commitment ("I've approved a
  refund of $40", "we'll call you on Friday") and something concrete (an amount, a
  refund, a call, a delivery ...);
- what the customer already tried ("I already restarted the router").
Staff add, edit and delete facts in the console (`fact_add`, `fact_edit`,
`fact_delete`), and an internal note can be kept as a fact (`note_add(as_fact=True)`):
each takes the acting principal as `actor` and is authorised as `Action.FACTS` (the
`add_note` permission: a read-only viewer cannot), and is recorded as a StaffAction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from conversations.authorization import Action, Actor, authorize
from conversations.conf import platform_setting
from conversations.errors import InvalidInput, NotFound
from conversations.models import Conversation, CustomerFact, FactSource, Message, StaffAction
from conversations.models.message import MessageKind
from conversations.services.locks import conversation_lock

MAX_FACT_CHARS = 400
MAX_SENTENCE_CHARS = 240

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_COMMITS = re.compile(
    r"\b(we'll|we will|i'll|i will|you'll (get|receive|see|have)|(i|we)'ve (approved|arranged|booked|added|"
    r"escalated|issued|scheduled|ordered|requested|refunded|credited)|(i|we) (have )?(approved|arranged|"
    r"issued|refunded|credited|promise)|is (booked|scheduled|on its way)|guarantee)\b",
    re.IGNORECASE,
)
_CONCRETE = re.compile(
    r"([$€£]\s?\d|\d+\s?(eur|euros|usd|dollars|pounds)\b|\b(refund\w*|credit\w*|replace\w*|discount|voucher|"
    r"call (you|back)|phone you|ring you|email you|ship\w*|deliver\w*|courier|technician|engineer|"
    r"waive\w*|collect\w*|escalat\w*|book\w*|schedul\w*|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|tomorrow|within \w+ (hours|days|working days)))",
    re.IGNORECASE,
)
_TRIED = re.compile(
    r"\b(already|i've tried|i tried|i have tried|i've (restarted|reset|swapped|checked|cleaned|reinstalled|"
    r"updated|replaced|unplugged)|i (restarted|reset|swapped|reinstalled|unplugged))\b",
    re.IGNORECASE,
)
_IDENTIFYING = re.compile(r"(^id$|_id$|number$|^reference$)")


def _sentences(text: str, pattern: re.Pattern[str], also: re.Pattern[str] | None = None) -> list[str]:
    if not pattern.search(text):  # most messages: one search, no sentence splitting (imports)
        return []
    found = []
    for sentence in _SENTENCE.split(text.strip()):
        sentence = " ".join(sentence.split())
        if pattern.search(sentence) and (also is None or also.search(sentence)):
            found.append(sentence[:MAX_SENTENCE_CHARS])
    return found


def promises_in(text: str) -> list[str]:
    """The sentences of an assistant's or staff member's message that promise something
    concrete."""
    return _sentences(text, _COMMITS, _CONCRETE)


def tried_in(text: str) -> list[str]:
    """The sentences of a customer's message saying what they already did."""
    return _sentences(text, _TRIED)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, dict):  # a list's entries: their values alone ("Espresso grinder 1")
        return " ".join(_value(v) for v in value.values() if v not in (None, "", []))
    return str(value)


def tool_fact(tool_name: str, output: str, arguments: str = "") -> tuple[str, str] | None:
    """(key, text) of a tool result worth keeping: a JSON object without an error."""
    try:
        data = json.loads(output)
    except (TypeError, ValueError):
        return None
    if not isinstance(data, dict) or not data or "error" in data:
        return None
    fields = [(k, v) for k, v in data.items() if v not in (None, "", [], {})]
    ident = next((f"{k}={v}" for k, v in fields if _IDENTIFYING.search(k) and not isinstance(v, (list, dict))), "")
    text = f"{tool_name}: " + "; ".join(f"{k.replace('_', ' ')} {_value(v)}" for k, v in fields)
    key = f"tool:{tool_name}:{ident or arguments}"[:200]
    return key, text[:MAX_FACT_CHARS]


def facts_keep(*, conversation: Conversation, messages: Iterable[Message]) -> list[CustomerFact]:
    """Keep the facts the newly stored items hold (see the module docstring).
    Precondition: inside the transaction that stored them, holding the conversation's lock."""
    messages = list(messages)
    tools = set(platform_setting("FACT_TOOLS"))
    arguments = {m.call_id: m.tool_arguments for m in messages if m.kind == MessageKind.FUNCTION_CALL}
    found: list[tuple[str, str, str, Message]] = []  # source, key, text, message
    for message in messages:
        if message.kind == MessageKind.FUNCTION_OUTPUT and message.tool_name in tools:
            result = tool_fact(message.tool_name, message.text, arguments.get(message.call_id, ""))
            if result is not None:
                found.append((FactSource.TOOL, result[0], result[1], message))
        elif message.kind in (MessageKind.ASSISTANT, MessageKind.STAFF):
            who = "Assistant" if message.kind == MessageKind.ASSISTANT else "Staff"
            for n, sentence in enumerate(promises_in(message.text)):
                found.append((FactSource.PROMISE, f"promise:{message.pk}:{n}", f"{who} promised: {sentence}", message))
        elif message.kind == MessageKind.USER:
            for n, sentence in enumerate(tried_in(message.text)):
                found.append((FactSource.TRIED, f"tried:{message.pk}:{n}", f"Customer already tried: {sentence}",
                              message))
    if not found:
        return []
    existing = {
        fact.key: fact for fact in CustomerFact.objects.filter(
            conversation_id=conversation.pk, key__in=[key for _, key, _, _ in found])
    }
    kept, new = [], []
    for source, key, text, message in found:
        fact = existing.get(key)
        if fact is None:
            fact = CustomerFact(conversation_id=conversation.pk, source=source, key=key, text=text, message=message)
            existing[key] = fact
            new.append(fact)
        elif fact.pk is None:  # kept earlier in this same batch: the later item's text wins
            fact.text, fact.message = text, message
        elif fact.author_id is None and fact.text != text:  # staff edits are left alone
            fact.text, fact.message = text, message
            fact.save(update_fields=["text", "message", "updated_at"])
        kept.append(fact)
    CustomerFact.objects.bulk_create(new)  # one statement (an import keeps many at once)
    return kept


def _clean(text: Any) -> str:
    text = " ".join(str(text or "").split())
    if not text:
        raise InvalidInput("A fact needs some text.")
    if len(text) > MAX_FACT_CHARS:
        raise InvalidInput(f"A fact is at most {MAX_FACT_CHARS} characters.")
    return text


def fact_of_conversation(conversation: Conversation, fact_id: Any) -> CustomerFact:
    """The conversation's fact with this id (NotFound otherwise, and for a bad id)."""
    try:
        return CustomerFact.objects.get(conversation_id=conversation.pk, pk=int(fact_id))
    except (TypeError, ValueError, CustomerFact.DoesNotExist):
        raise NotFound("No such fact.") from None


def fact_add(
    *, conversation: Conversation, actor: Actor, text: Any, source: str = FactSource.STAFF,
    message: Message | None = None,
) -> CustomerFact:
    """A fact written by staff (or kept from their note: `source` note, `message` the note)."""
    author = authorize(actor, Action.FACTS, conversation).staff_user
    text = _clean(text)
    with transaction.atomic():
        locked = conversation_lock(conversation.pk)
        fact = CustomerFact.objects.create(
            conversation=locked, text=text, source=source, message=message, author=author)
        StaffAction.objects.create(actor=author, conversation=locked, action="fact_add", detail={"fact": fact.pk})
    return fact


def fact_edit(*, fact: CustomerFact, actor: Actor, text: Any) -> CustomerFact:
    """Rewrite a fact; it is then the editor's, and automatic updates leave it alone."""
    author = authorize(actor, Action.FACTS, fact.conversation).staff_user
    text = _clean(text)
    with transaction.atomic():
        locked = conversation_lock(fact.conversation_id)
        fact.text, fact.author = text, author
        fact.save(update_fields=["text", "author", "updated_at"])
        StaffAction.objects.create(actor=author, conversation=locked, action="fact_edit", detail={"fact": fact.pk})
    return fact


def fact_delete(*, fact: CustomerFact, actor: Actor) -> None:
    author = authorize(actor, Action.FACTS, fact.conversation).staff_user
    with transaction.atomic():
        locked = conversation_lock(fact.conversation_id)
        StaffAction.objects.create(actor=author, conversation=locked, action="fact_delete",
                                   detail={"fact": fact.pk, "text": fact.text})
        fact.delete()
