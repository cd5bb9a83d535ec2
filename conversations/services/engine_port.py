"""The engine port: what the services need from the engine, and nothing more.

The services store state; the engine (`conversations.agent.engine`, a layer above)
runs turns and sends events. Rather than import it, the services call the three
functions here, which act once the surrounding transaction commits (never inside it,
so nobody sees a row that is later rolled back):

- `publish_on_commit(conversation_id, event)`: send an event to the conversation's
  subscribers;
- `dispatch_on_commit(conversation_id)`: drain the conversation's queued turns;
- `interrupt_on_commit(turn_id)`: stop a turn this process is running.

The engine registers itself with `engine_port_register` at start-up
(`ConversationsConfig.ready`). All three are `robust` on-commit callbacks: a lost
event is recovered by `seq`, a lost dispatch by the sweeper, a lost interrupt at the
turn's next lease renewal, so none may turn a committed write into an error.
"""

from __future__ import annotations

from typing import Protocol
from uuid import UUID

from django.db import transaction

from conversations.agent.events import EngineEvent


class EnginePort(Protocol):
    def publish_soon(self, conversation_id: UUID | str, event: EngineEvent) -> None:
        """Send `event` to the conversation's subscribers, after those published before it."""

    def dispatch(self, conversation_id: UUID | str) -> None:
        """Drain the conversation's queued turns (from any thread)."""

    def interrupt(self, turn_id: UUID | str, signal: str = "cancel") -> None:
        """Stop the turn now if this process runs it (from any thread)."""


_port: EnginePort | None = None


def engine_port_register(port: EnginePort) -> None:
    """Install the engine the services reach (the process's one `Engine`)."""
    global _port
    _port = port


def engine_port() -> EnginePort:
    if _port is None:
        raise RuntimeError("No engine is registered (ConversationsConfig.ready registers it).")
    return _port


def publish_on_commit(conversation_id: UUID | str, event: EngineEvent) -> None:
    port = engine_port()
    transaction.on_commit(lambda: port.publish_soon(conversation_id, event), robust=True)


def dispatch_on_commit(conversation_id: UUID | str) -> None:
    port = engine_port()
    transaction.on_commit(lambda: port.dispatch(conversation_id), robust=True)


def interrupt_on_commit(turn_id: UUID | str, signal: str = "cancel") -> None:
    port = engine_port()
    transaction.on_commit(lambda: port.interrupt(turn_id, signal), robust=True)
