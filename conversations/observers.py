"""Hooks the core and the agent expose to observers, so observing code (ops: the
dashboard's facts, Prometheus, log context) is never imported by what it observes.

Each hook is a list of callbacks, connected at start-up (`OpsConfig.ready`) and called
in order, synchronously, where the event happens: `turn_finished` runs inside the
transaction that ended the turn, so an observer's own writes commit or roll back with
it, and an observer that wants to act only after the commit schedules that itself. An
exception in an observer propagates (a fact that cannot be written fails the ending,
as it did when the services called the recorder directly).

- `turn_finished(turn, stored)`: a turn reached its final status (completed, failed,
  cancelled, lease expired). `turn` carries `FINISHED_TURN_FIELDS` (the rest may be
  deferred); `stored` is the items the ending stored, or None when it stored none.
- `turn_started(turn_id, conversation_id)`: the runner begins a claimed turn, in the
  task that runs it (context variables set here follow the turn).
- `tool_called(name, ok, seconds)`: one tool call ended; `name` is "unknown" for a
  name the model made up.
- `budget_stopped(limit)`: a budget limit ended a turn without calling the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, ParamSpec

P = ParamSpec("P")

# The Turn fields `turn_finished` observers may read without a query (the services
# load at least these when they end a turn).
FINISHED_TURN_FIELDS = (
    "id", "conversation_id", "agent_id", "created_at", "started_at", "model", "status", "error_code",
    "error_message", "latency_ms", "time_to_first_token_ms", "input_tokens", "cached_tokens", "output_tokens",
    "reasoning_tokens", "cost",
)


class Hook(Generic[P]):
    """Callbacks with one signature, called in the order they were connected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[Callable[P, Any]] = []

    def connect(self, callback: Callable[P, Any]) -> None:
        """Add `callback` (once: connecting it again, as a reloaded app does, is a no-op)."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[P, Any]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        for callback in list(self._callbacks):
            callback(*args, **kwargs)


turn_finished: Hook[[Any, list[Any] | None]] = Hook("turn_finished")
turn_started: Hook[...] = Hook("turn_started")
tool_called: Hook[[str, bool, float]] = Hook("tool_called")
budget_stopped: Hook[[str]] = Hook("budget_stopped")
