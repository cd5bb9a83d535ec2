"""Guardrails around a turn: checks that can refuse the customer's message before the
model sees it, and the model's answer before the customer does.

A guardrail is any object with a `name` and two methods, `check_input(text)` and
`check_output(text)`, each returning a `GuardDecision` to refuse or None to let the
text through. Two sources, both per agent:
- the built-in `BlocklistGuard`, from the agent's `blocked_input_patterns` and
  `blocked_output_patterns` (lists of `{"label": ..., "pattern": ...}`, regular
  expressions matched case-insensitively; checked by `patterns_problem` at save);
- the deployment's own, named in `SUPPORT_GUARDRAILS` (dotted paths of factories
  called with the agent, returning a guardrail or None), e.g. a moderation call. Its
  `check_input` is also asked about the earlier customer messages of the history (so a
  refused one is left out of later requests): cache its answers if it is costly.

`TurnGuard` holds one turn's guardrails and decisions. The runner (`runner.run_rounds`)
asks it before the first request (a refused message is answered with the agent's
`guardrail_reply` and never sent to the provider) and passes the streamed text through
its `OutputGate`: with output checks, text reaches the customer only once it has passed
them, less a held-back tail of `HOLDBACK` characters that a match could still begin
in; a refused answer is replaced by the reply, and the text withheld stays withheld.
Every refusal is in the turn's audit (`Turn.guardrails`): stage, guard, label, never the
matched text. The checks see the real text, before PII redaction.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from django.utils.module_loading import import_string

from conversations.agent.patterns import labelled_patterns_problem
from conversations.conf import platform_setting

DEFAULT_REPLY = (
    "Sorry, I can't help with that here. If you need something else, or want a person to "
    "look at it, just say so."
)
HOLDBACK = 80  # characters of streamed text held back while output checks run
MAX_PATTERNS = 50


@dataclass(frozen=True)
class GuardDecision:
    """A refusal: at which stage, by which guardrail, and the rule's label."""

    stage: str  # "input" or "output"
    guard: str
    label: str

    def audit(self) -> dict[str, str]:
        return {"stage": self.stage, "guard": self.guard, "action": "refuse", "label": self.label}


class Guardrail(Protocol):
    name: str

    def check_input(self, text: str) -> GuardDecision | None: ...

    def check_output(self, text: str) -> GuardDecision | None: ...


def patterns_problem(value: Any) -> str | None:
    """Why `value` cannot be a list of blocked patterns (None when it can)."""
    return labelled_patterns_problem(value, example="OFF_TOPIC", limit=MAX_PATTERNS, flags=re.IGNORECASE)


@functools.lru_cache(maxsize=256)
def _compiled(encoded: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((entry["label"], re.compile(entry["pattern"], re.IGNORECASE)) for entry in json.loads(encoded))


def compiled_patterns(value: Any) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(label, regex) of valid blocked patterns; none for an invalid setting (saving the
    agent refuses those, so only a row written around it can have them)."""
    if not value or patterns_problem(value) is not None:
        return ()
    return _compiled(json.dumps(value, sort_keys=True))


class BlocklistGuard:
    """The agent's blocked patterns: the first that matches refuses, by its label."""

    name = "blocklist"

    def __init__(self, inputs: Any, outputs: Any) -> None:
        self.inputs = compiled_patterns(inputs)
        self.outputs = compiled_patterns(outputs)

    def _check(self, stage: str, patterns: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> GuardDecision | None:
        for label, regex in patterns:
            if regex.search(text):
                return GuardDecision(stage, self.name, label)
        return None

    def check_input(self, text: str) -> GuardDecision | None:
        return self._check("input", self.inputs, text)

    def check_output(self, text: str) -> GuardDecision | None:
        return self._check("output", self.outputs, text)


def guards_for(agent: Any) -> list[Guardrail]:
    """The agent's guardrails: its blocklist (when it has patterns), then the
    deployment's `SUPPORT_GUARDRAILS` factories'."""
    guards: list[Guardrail] = []
    if getattr(agent, "blocked_input_patterns", None) or getattr(agent, "blocked_output_patterns", None):
        guards.append(BlocklistGuard(agent.blocked_input_patterns, agent.blocked_output_patterns))
    for path in platform_setting("GUARDRAILS"):
        made = import_string(path)(agent)
        if made is not None:
            guards.append(made)
    return guards


class TurnGuard:
    """One turn's guardrails and the refusals they made."""

    def __init__(self, guards: list[Guardrail], reply: str = "") -> None:
        self.guards = guards
        self.reply = reply or DEFAULT_REPLY
        self.decisions: list[GuardDecision] = []

    @classmethod
    def for_agent(cls, agent: Any) -> TurnGuard:
        return cls(guards_for(agent), getattr(agent, "guardrail_reply", ""))

    @property
    def active(self) -> bool:
        return bool(self.guards)

    def _first(self, check: Callable[[Guardrail], GuardDecision | None]) -> GuardDecision | None:
        for guard in self.guards:
            decision = check(guard)
            if decision is not None:
                self.decisions.append(decision)
                return decision
        return None

    def refuses_input(self, text: str) -> bool:
        return self.active and self._first(lambda guard: guard.check_input(text)) is not None

    def history(self, input_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The input without the earlier customer messages a guardrail refuses, so a
        refused message never reaches the provider in a later turn's history either (not
        recorded again: its own turn's audit has it). The current message, the last
        customer item, is the caller's to check."""
        if not self.active:
            return input_items
        users = [i for i, item in enumerate(input_items) if item.get("role") == "user"]
        current = users[-1] if users else -1
        return [
            item for i, item in enumerate(input_items)
            if i == current or item.get("role") != "user" or not isinstance(item.get("content"), str)
            or not any(guard.check_input(item["content"]) for guard in self.guards)
        ]

    def refuses_output(self, text: str) -> bool:
        if not self.active:
            return False
        if any(decision.stage == "output" for decision in self.decisions):
            return True  # a refused answer stays refused, whatever follows
        return self._first(lambda guard: guard.check_output(text)) is not None

    def gate(self, sink: Callable[[str], Awaitable[None]]) -> OutputGate:
        return OutputGate(self, sink)

    def audit(self) -> list[dict[str, str]]:
        return [decision.audit() for decision in self.decisions]


class OutputGate:
    """Streamed text passes only once the output checks have passed it: all of the text
    so far is checked at each delta, and the last `HOLDBACK` characters wait (a match
    could begin there); `close` sends them at the round's end if the whole text passes.
    Once a check refuses, nothing more is sent. Without guardrails it is a plain relay."""

    def __init__(self, guard: TurnGuard, sink: Callable[[str], Awaitable[None]]) -> None:
        self.guard = guard
        self.sink = sink
        self.text = ""
        self.sent = 0

    async def feed(self, delta: str) -> None:
        if not self.guard.active:
            await self.sink(delta)
            return
        self.text += delta
        if self.guard.refuses_output(self.text):
            return
        safe = len(self.text) - HOLDBACK
        if safe > self.sent:
            chunk, self.sent = self.text[self.sent : safe], safe
            await self.sink(chunk)

    async def close(self) -> None:
        if self.guard.active and self.sent < len(self.text) and not self.guard.refuses_output(self.text):
            chunk, self.sent = self.text[self.sent :], len(self.text)
            await self.sink(chunk)
