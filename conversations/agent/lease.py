"""Keeping a running turn's lease, and stopping the turn's work when it must stop.

A turn runs under a lease in the database (`services.turns`). While the work runs,
`LeaseKeeper.guard` renews the lease every third of its length. When the renewal says
the turn was cancelled (someone asked it to stop) or lost (the lease expired and the
sweeper failed it, or another worker owns it now), the work task is cancelled at once:
a streaming request is closed, a tool wait is abandoned. The runner then records the
cancellation, or for a lost lease writes nothing at all: the outcome belongs to whoever
owns the turn now. A process that cancels a turn it is running itself does not wait
for the next renewal: `interrupt` stops the work immediately.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from uuid import UUID

from conversations.conf import platform_setting
from conversations.services import leases as turn_services

if TYPE_CHECKING:
    from conversations.agent.engine import Engine

logger = logging.getLogger(__name__)

CANCEL = "cancel"
LOST = "lost"


class LeaseKeeper:
    def __init__(self, engine: Engine, turn_id: UUID | str, owner: str) -> None:
        self.engine = engine
        self.turn_id = turn_id
        self.owner = owner
        self.signal: str | None = None
        self._work: asyncio.Task[Any] | None = None

    def interrupt(self, signal: str) -> None:
        """Stop the work (call on the engine loop). Ignored once the work finished, so
        an answer that is already complete is not thrown away."""
        if self._work is not None and self.signal is None and self._work.cancel():
            self.signal = signal

    async def guard(self, work: asyncio.Task[Any]) -> str | None:
        """Renew the lease until `work` finishes. Returns None when it finished by itself,
        or the signal (CANCEL / LOST) it was stopped for. Re-raises the work's exception."""
        self._work = work
        interval = max(0.2, float(platform_setting("TURN_LEASE_SECONDS")) / 3)
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=interval)
                if work.done():
                    break
                try:
                    signal = await self.engine.db(
                        turn_services.turn_heartbeat, turn_id=self.turn_id, owner=self.owner
                    )
                except Exception:  # a missed renewal is survivable; the lease has slack
                    logger.warning("could not renew the lease of turn %s", self.turn_id, exc_info=True)
                    continue
                if signal != "ok":
                    self.interrupt(signal)
        except asyncio.CancelledError:
            work.cancel()
            raise
        try:
            await work
        except asyncio.CancelledError:
            if self.signal is None:
                raise
        return self.signal
