"""A running turn's progress: what it has streamed, produced and spent, and the events
that tell subscribers about it.

`TurnProgress` is the runner's memory for one attempt. It coalesces text deltas into
one `text.delta` event per flush interval (a provider streams a token at a time; a
websocket frame per token is waste), publishes tool activity, accumulates usage and
the audit (every request body exactly as sent, placeholders and all when PII
redaction is on, with what was redacted per kind; response ids, timings, and per round
its HTTP attempts, usage with cached tokens, where a cut stream stopped and the
commentary it streamed), and produces the audit dict the turn services store. Partial
text is kept for the audit of a failed or cancelled attempt only: it is never an
answer. Commentary (`phase: commentary`) is published as `turn.commentary` events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from conversations.agent.events import (
    EngineEvent,
    commentary_event,
    text_delta_event,
    tool_finished_event,
    tool_started_event,
)
from conversations.agent.pricing import cost_for
from conversations.agent.provider import ProviderFailure, RoundResult, Usage
from conversations.models.turn import AttemptAudit
from tools.registry import ToolCallResult, activity_for

logger = logging.getLogger(__name__)
_observers: list[Callable[[TurnProgress], None]] = []


def observe_turns(observer: Callable[[TurnProgress], None]) -> Callable[[], None]:
    """Call `observer(progress)` after each turn this process runs has been recorded
    (metrics, benchmarks). Returns a function that removes it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


class EventPublisher(Protocol):
    """Where a progress sends its events: the `Engine`, or the console replay's sink."""

    async def publish(self, conversation_id: str, event: EngineEvent) -> None: ...


@dataclass
class TurnProgress:
    engine: EventPublisher
    conversation_id: str
    turn_id: str
    flush_interval: float
    started: float = field(default_factory=time.monotonic)
    requests: list[dict[str, Any]] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    items: list[dict[str, Any]] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    first_token_at: float | None = None
    tool_rounds: int = 0
    status: str = ""  # how the turn ended, once recorded
    provider_seconds: float = 0.0  # inside provider calls, not counting our own callbacks
    _callback_seconds: float = 0.0
    history: AttemptAudit = field(default_factory=lambda: AttemptAudit())  # the plan's part
    # What PII redaction replaced in the requests sent, per kind (None: redaction off).
    redactions: dict[str, dict[str, int]] | None = None
    # The guardrails' refusals (`guardrails.TurnGuard.audit`; None: the agent has none).
    guardrails: list[dict[str, str]] | None = None
    _pending: str = ""
    _last_flush: float = 0.0

    # --- streaming ------------------------------------------------------------------
    async def text_delta(self, delta: str) -> None:
        now = time.monotonic()
        if self.first_token_at is None:
            self.first_token_at = now
        self.partial.append(delta)
        self._pending += delta
        if now - self._last_flush >= self.flush_interval:
            await self.flush()
        self._callback_seconds += time.monotonic() - now

    async def flush(self) -> None:
        if self._pending:
            text, self._pending = self._pending, ""
            self._last_flush = time.monotonic()
            await self.engine.publish(
                self.conversation_id, text_delta_event(self.conversation_id, self.turn_id, text)
            )

    async def commentary(self, delta: str) -> None:
        started = time.monotonic()
        await self.flush()
        await self.engine.publish(
            self.conversation_id, commentary_event(self.conversation_id, self.turn_id, delta)
        )
        self._callback_seconds += time.monotonic() - started

    async def tool_started(self, item: dict[str, Any]) -> None:
        started = time.monotonic()
        await self.flush()
        name = item.get("name", "")
        await self.engine.publish(
            self.conversation_id,
            tool_started_event(
                self.conversation_id, self.turn_id, call_id=item.get("call_id", ""),
                name=name, activity=activity_for(name),
            ),
        )
        self._callback_seconds += time.monotonic() - started

    async def tool_finished(self, outcome: ToolCallResult) -> None:
        await self.engine.publish(
            self.conversation_id,
            tool_finished_event(
                self.conversation_id, self.turn_id, call_id=outcome.call_id,
                name=outcome.name, ok=outcome.ok,
            ),
        )

    # --- accounting -----------------------------------------------------------------
    @contextmanager
    def provider_call(self) -> Iterator[None]:
        """Time a provider call (the SDK request and its stream), minus the time our own
        callbacks took while it streamed."""
        started, callbacks = time.monotonic(), self._callback_seconds
        try:
            yield
        finally:
            self.provider_seconds += time.monotonic() - started - (self._callback_seconds - callbacks)

    def request_sent(self, request: dict[str, Any]) -> None:
        self.requests.append(request)

    def response_received(self, response_id: str, usage: Usage) -> None:
        if response_id:
            self.response_ids.append(response_id)
        self.usage.add(usage)

    def round_finished(self, outcome: RoundResult | ProviderFailure, *, commentary: list[str] | None = None) -> None:
        """One round's audit entry from its `RoundResult` or `ProviderFailure`."""
        usage = outcome.usage
        entry: dict[str, Any] = {
            "response_id": outcome.response_id,
            "attempts": list(outcome.attempts),
            "attempt_count": len(outcome.attempts),
            "input_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_tokens,
            "output_tokens": usage.output_tokens,
        }
        if isinstance(outcome, ProviderFailure) and outcome.code:
            entry.update(error_code=outcome.code, stream_phase=outcome.stream_phase)
        if commentary:
            entry["commentary"] = commentary
        self.rounds.append(entry)

    def restart_text(self) -> None:
        """Forget streamed text (the round is sent again, e.g. with a smaller history)."""
        self.partial.clear()
        self._pending = ""

    def audit(self, model: str, *, finished_ok: bool) -> AttemptAudit:
        """The fields the turn services store on the Turn."""
        now = time.monotonic()
        usage = self.usage
        audit: AttemptAudit = {
            **self.history,
            "requests": self.requests,
            "response_ids": self.response_ids,
            "rounds": self.rounds,
            "input_tokens": usage.input_tokens,
            "cached_tokens": usage.cached_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cost": cost_for(model, usage),
            "tool_rounds": self.tool_rounds,
            "latency_ms": int((now - self.started) * 1000),
            "time_to_first_token_ms": (
                int((self.first_token_at - self.started) * 1000) if self.first_token_at else None
            ),
            "partial_text": "" if finished_ok else "".join(self.partial),
        }
        if self.redactions is not None:
            audit["redactions"] = {"enabled": True, "kinds": self.redactions}
        if self.guardrails:
            audit["guardrails"] = self.guardrails
        return audit

    def recorded(self, status: str) -> None:
        """The turn's outcome was written (or, for a lost lease, deliberately not)."""
        self.status = status
        for observer in list(_observers):
            try:
                observer(self)
            except Exception:
                logger.warning("turn observer failed", exc_info=True)
