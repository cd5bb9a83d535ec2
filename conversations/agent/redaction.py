"""PII redaction before the provider: what of a turn's request is replaced by
placeholders, and how the model's output gets the real values back.

With `Agent.pii_redaction` on, a turn's `Redactor` replaces emails, phone numbers,
card numbers (Luhn-checked), IBANs (length and mod-97 checked) and the agent's own
patterns (`Agent.pii_patterns`, a list of `{"label": "ORDER_REF", "pattern": "..."}`)
by placeholders such as `<EMAIL_1>` in every input item it is given: history,
customer facts, staff replies, the current message, tool outputs (knowledge passages
among them). Instructions and tool definitions are the company's own and are never
passed through it. The same value (compared normalised: an email's case, a card's or
phone's separators, an IBAN's spaces) gets the same placeholder for the whole turn.
Placeholders are numbered per kind in order of first appearance, so two turns whose
requests share a prefix number the values in it alike and the provider's prompt cache
still matches that prefix.

The other direction: `restore` puts the real values back into text the model wrote
(the stored answer, commentary), `restore_call` into a function call's JSON arguments
before the tool runs (JSON-escaped, so `lookup_order` gets the real email), and a
`StreamRestorer` into streamed deltas, holding back the tail of a delta that could be
the start of a placeholder split across deltas. A placeholder the turn did not hand
out is left as written.

What was redacted is counted per kind (`summary`: distinct values and replacements,
never the values), for the turn's audit. A redacting turn's input starts with
`NOTE_ITEM`, a developer message asking the model to write placeholders exactly as
shown. With redaction off, `Redactor.off()` passes everything through unchanged at no
cost. This module is plain Python (no Django), so `bench/redaction.py` can time it, and
compare libraries, outside the project.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conversations.agent.patterns import labelled_patterns_problem

if TYPE_CHECKING:
    from conversations.models import Agent

EMAIL = "EMAIL"
PHONE = "PHONE"
CARD = "CARD"
IBAN = "IBAN"
BUILT_IN_KINDS = (EMAIL, PHONE, CARD, IBAN)

# Sent first in a redacting turn's input, so the model repeats placeholders exactly (the
# platform can only restore what it handed out, written as it was).
PLACEHOLDER_NOTE = (
    "Privacy: the customer's data (emails, phone numbers, card numbers, IBANs and similar) "
    "is shown to you as placeholders such as <EMAIL_1>. Treat each as the value it stands "
    "for, write it exactly as shown (angle brackets included) when you need it in an answer "
    "or a tool call, and never ask the customer to repeat it."
)
NOTE_ITEM: dict[str, Any] = {"type": "message", "role": "developer", "content": PLACEHOLDER_NOTE}
MAX_PATTERNS = 20
PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>")
# The longest tail of a delta held back as a possible placeholder start: "<", a label
# (at most 31 characters), "_", a number.
_HOLDBACK_LIMIT = 48
_PLACEHOLDER_START = re.compile(r"<(?:[A-Z][A-Z0-9_]*(?:_[0-9]*)?)?\Z")

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![\w-])"
)
# 13-19 digits, single spaces or dashes between them allowed.
_CARD = re.compile(r"(?<![\w.,])\d(?:[ -]?\d){12,18}(?![\w])")
# Two letters, two check digits, then groups of four (spaced or not) and a short last one.
_IBAN = re.compile(r"(?<![\w])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![\w])", re.IGNORECASE)
# An optional +country code, an optional (area code), then groups of digits separated by
# one space, dot or dash. Which candidates are phone numbers is decided by `_is_phone`.
_PHONE = re.compile(
    r"(?<![\w+.,/-])(?:\+[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,5}\)[ .-]?)?[0-9]{1,12}(?:[ .-][0-9]{1,8}){0,6}(?![\w:]|[.,-][0-9])"
)
_NEEDS_DIGIT_OR_AT = re.compile(r"[0-9@]")
_SPLIT = re.compile(r"[ .-]")

# Official IBAN lengths by country (SWIFT's registry); a country not listed is
# accepted at any length from 15 to 34 if its checksum holds.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(compact: str) -> bool:
    """An IBAN (upper case, no spaces): its country's length and the ISO 13616 mod-97 check."""
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _is_phone(candidate: str) -> bool:
    """Whether a `_PHONE` candidate is a phone number rather than an order number, a
    date, an amount or an address. A bare run of digits is only one with a leading +:
    without it, it cannot be told from an order or account number."""
    digits = sum(char.isdigit() for char in candidate)
    if candidate.startswith("+"):
        return 8 <= digits <= 15
    if not 9 <= digits <= 15:
        return False
    if "(" in candidate:
        return True
    groups = [group for group in _SPLIT.split(candidate) if group]
    if len(groups) < 2:
        return False
    if "." in candidate and len(groups) == 4 and all(len(group) <= 3 for group in groups):
        return False  # an IPv4 address
    if any(len(group) == 1 for group in groups[1:]):
        return False  # an ISBN or a part number: phone numbers do not end groups of one digit
    return len(groups) >= 3 or candidate.startswith("0")


@dataclass(frozen=True)
class CustomPattern:
    """One of an agent's own patterns: what it matches is replaced by `<LABEL_n>`."""

    label: str
    regex: re.Pattern[str]


def patterns_problem(value: Any) -> str | None:
    """Why `value` cannot be an agent's `pii_patterns` (None when it can): a list of at
    most `MAX_PATTERNS` objects with an upper-case `label` (not a built-in kind) and a
    regular expression that compiles and cannot match the empty string."""
    return labelled_patterns_problem(value, example="ORDER_REF", limit=MAX_PATTERNS, reserved=BUILT_IN_KINDS)


@functools.lru_cache(maxsize=256)
def _compiled(patterns_json: str) -> tuple[CustomPattern, ...]:
    return tuple(CustomPattern(entry["label"], re.compile(entry["pattern"])) for entry in json.loads(patterns_json))


def custom_patterns(value: Any) -> tuple[CustomPattern, ...]:
    """An agent's `pii_patterns`, compiled (cached); invalid settings compile to none
    (`agent_save` refuses them, so only a row written around it can have them)."""
    if not value or patterns_problem(value) is not None:
        return ()
    return _compiled(json.dumps(value, sort_keys=True))


def _normalised(kind: str, value: str) -> str:
    if kind == EMAIL:
        return value.lower()
    if kind in (PHONE, CARD):
        return "".join(char for char in value if char.isdigit() or char == "+")
    if kind == IBAN:
        return value.replace(" ", "").upper()
    return value


def _trimmed(text: str, start: int, end: int, valid: Callable[[str], bool]) -> int | None:
    """The end of the longest valid span from `start` to `end` or to one of the spaces
    or dashes inside it (a candidate may have swallowed a following group)."""
    while end > start:
        if valid(text[start:end]):
            return end
        cut = max(text.rfind(" ", start, end), text.rfind("-", start, end))
        if cut <= start:
            return None
        end = cut
    return None


def _card(candidate: str) -> bool:
    """13-19 digits passing Luhn, written whole or in a card's grouping: fours with a
    last group of three or four, or American Express / Diners 4-6-5 / 4-6-4."""
    digits = "".join(char for char in candidate if char.isdigit())
    if not (13 <= len(digits) <= 19 and luhn_valid(digits)):
        return False
    groups = [len(group) for group in re.split(r"[ -]", candidate)]
    return len(groups) == 1 or groups in ([4, 6, 5], [4, 6, 4]) or (
        all(size == 4 for size in groups[:-1]) and groups[-1] in (3, 4)
    )


def _iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "").upper()
    return compact[:2].isalpha() and iban_valid(compact)


def find_spans(text: str, custom: tuple[CustomPattern, ...] = ()) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every value to redact in `text`, in order, not overlapping
    (where two overlap, the one starting first wins, then the longer)."""
    found: list[tuple[int, int, str]] = []
    for pattern in custom:
        found += [(m.start(), m.end(), pattern.label) for m in pattern.regex.finditer(text) if m.end() > m.start()]
    if _NEEDS_DIGIT_OR_AT.search(text):
        if "@" in text:
            found += [(m.start(), m.end(), EMAIL) for m in _EMAIL.finditer(text)]
        for m in _CARD.finditer(text):
            end = _trimmed(text, m.start(), m.end(), _card)
            if end is not None:
                found.append((m.start(), end, CARD))
        for m in _IBAN.finditer(text):
            end = _trimmed(text, m.start(), m.end(), _iban)
            if end is not None:
                found.append((m.start(), end, IBAN))
        found += [(m.start(), m.end(), PHONE) for m in _PHONE.finditer(text) if _is_phone(m.group())]
    if len(found) < 2:
        return found
    found.sort(key=lambda span: (span[0], -span[1]))
    kept: list[tuple[int, int, str]] = []
    for span in found:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


class Redactor:
    """One turn's redaction and its vault (value <-> placeholder). Not thread-safe: the
    turn loop uses it from its own task only."""

    def __init__(self, custom: tuple[CustomPattern, ...] = (), *, active: bool = True) -> None:
        self.active = active
        self.custom = custom
        self._placeholders: dict[tuple[str, str], str] = {}  # (kind, normalised value) -> placeholder
        self._values: dict[str, str] = {}  # placeholder -> the value as first written
        self._counts: dict[str, list[int]] = {}  # kind -> [distinct values, replacements]

    @classmethod
    def off(cls) -> Redactor:
        return cls(active=False)

    @classmethod
    def for_agent(cls, agent: Agent) -> Redactor:
        """A fresh redactor for one turn of `agent`: off unless the agent turns it on."""
        if not getattr(agent, "pii_redaction", False):
            return cls.off()
        return cls(custom_patterns(getattr(agent, "pii_patterns", None)))

    # --- towards the provider ---------------------------------------------------------
    def text(self, text: str) -> str:
        """`text` with every value to redact replaced by its placeholder."""
        if not self.active or not text:
            return text
        spans = find_spans(text, self.custom)
        if not spans:
            return text
        parts: list[str] = []
        last = 0
        for start, end, kind in spans:
            parts += [text[last:start], self._placeholder(kind, text[start:end])]
            last = end
        parts.append(text[last:])
        return "".join(parts)

    def _placeholder(self, kind: str, value: str) -> str:
        counts = self._counts.setdefault(kind, [0, 0])
        counts[1] += 1
        key = (kind, _normalised(kind, value))
        placeholder = self._placeholders.get(key)
        if placeholder is None:
            counts[0] += 1
            placeholder = f"<{kind}_{counts[0]}>"
            self._placeholders[key] = placeholder
            self._values[placeholder] = value
        return placeholder

    def item(self, item: dict[str, Any]) -> dict[str, Any]:
        """A Responses API input item with its text redacted (a new dict; `item` is not
        changed). Reasoning items go as they are: their content is the provider's own."""
        if not self.active:
            return item
        kind = item.get("type")
        if kind == "message":
            content = item.get("content")
            if isinstance(content, str):
                return {**item, "content": self.text(content)}
            if isinstance(content, list):
                parts = [
                    {**part, "text": self.text(part["text"])} if isinstance(part, dict) and isinstance(part.get("text"), str)
                    else part
                    for part in content
                ]
                return {**item, "content": parts}
            return item
        if kind == "function_call_output" and isinstance(item.get("output"), str):
            return {**item, "output": self.text(item["output"])}
        if kind == "function_call" and isinstance(item.get("arguments"), str):
            return {**item, "arguments": self.text(item["arguments"])}
        return item

    def items(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.item(item) for item in items]

    def history(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A turn's selected history as sent: redacted, after `NOTE_ITEM` (once: a
        replayed recording already starts with it)."""
        if not self.active:
            return items
        sent = self.items(items)
        return sent if sent[:1] == [NOTE_ITEM] else [dict(NOTE_ITEM), *sent]

    # --- back from the provider -------------------------------------------------------
    def restore(self, text: str) -> str:
        """`text` with this turn's placeholders replaced by the real values."""
        if not self._values or "<" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._values.get(m.group(), m.group()), text)

    def restore_arguments(self, arguments: str) -> str:
        """A function call's JSON arguments with the real values, JSON-escaped."""
        if not self._values or "<" not in arguments:
            return arguments
        return PLACEHOLDER.sub(
            lambda m: json.dumps(self._values[m.group()], ensure_ascii=False)[1:-1] if m.group() in self._values
            else m.group(),
            arguments,
        )

    def restore_call(self, call: dict[str, Any]) -> dict[str, Any]:
        """A `function_call` output item with the real values in its arguments."""
        arguments = call.get("arguments")
        if not isinstance(arguments, str):
            return call
        restored = self.restore_arguments(arguments)
        return call if restored == arguments else {**call, "arguments": restored}

    def restore_answers(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items to store (`output.answer_items`) with the real values in their text."""
        if not self._values:
            return items
        return [{**item, "text": self.restore(item["text"])} if "text" in item else item for item in items]

    def stream(self, sink: Callable[[str], Awaitable[None]]) -> StreamRestorer:
        """A delta callback that restores placeholders before `sink` sees the text."""
        return StreamRestorer(self, sink)

    @contextlib.asynccontextmanager
    async def restoring(
        self, on_text: Callable[[str], Awaitable[None]], on_commentary: Callable[[str], Awaitable[None]]
    ) -> AsyncIterator[tuple[Callable[[str], Awaitable[None]], Callable[[str], Awaitable[None]]]]:
        """One round's text and commentary callbacks, restoring. What they hold back is
        sent when the round ends, or, when it fails, kept as the text's partial end
        (nothing more is published once the round is cancelled)."""
        text, commentary = self.stream(on_text), self.stream(on_commentary)
        try:
            yield text.feed, commentary.feed
        except Exception:
            await text.close()
            raise
        await text.close()
        await commentary.close()

    # --- the audit --------------------------------------------------------------------
    def summary(self) -> dict[str, dict[str, int]]:
        """Per kind redacted: distinct values and replacements made (never the values)."""
        return {kind: {"values": values, "replacements": replaced} for kind, (values, replaced) in self._counts.items()}


class StreamRestorer:
    """Restores placeholders in streamed deltas. A delta's tail that could begin a
    placeholder ("<EMA") is held back until the next delta shows whether it is one, at
    most `_HOLDBACK_LIMIT` characters; `close` sends what is held at the end."""

    def __init__(self, redactor: Redactor, sink: Callable[[str], Awaitable[None]]) -> None:
        self.redactor = redactor
        self.sink = sink
        self._held = ""

    async def feed(self, delta: str) -> None:
        if not self.redactor._values:  # nothing was redacted: nothing to restore
            if self._held:
                delta, self._held = self._held + delta, ""
            await self.sink(delta)
            return
        text = self._held + delta
        self._held = ""
        cut = text.rfind("<")
        if cut >= 0 and len(text) - cut < _HOLDBACK_LIMIT and _PLACEHOLDER_START.match(text, cut):
            text, self._held = text[:cut], text[cut:]
        if text:
            await self.sink(self.redactor.restore(text))

    async def close(self) -> None:
        if self._held:
            held, self._held = self._held, ""
            await self.sink(self.redactor.restore(held))
