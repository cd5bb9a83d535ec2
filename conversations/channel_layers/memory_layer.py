"""The embedded-mode channel layer: channels' in-memory layer, made to scale with the
number of open websockets.

Channels' `InMemoryChannelLayer` sweeps every channel and every group for expired
messages on each `send`-side `group_send` and on each `receive`. With one group per open
conversation, that is O(connections) work per event: at 1,000 widget connections the
sweep alone cost more CPU than the rest of a streamed answer's delivery. Here the
sweep runs at most once per `sweep_interval` seconds (expiry is a safety net for
consumers that stopped reading, not a deadline), and `group_send` puts the message on
each member's queue directly instead of through a task per member. Delivery semantics
are unchanged: at most once, with a capacity per channel. Scale mode uses Redis.
"""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as _ChannelsInMemoryLayer


class InMemoryChannelLayer(_ChannelsInMemoryLayer):
    def __init__(self, *args: Any, sweep_interval: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweep_interval = sweep_interval
        self._next_sweep = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.sweep_interval
        super()._clean_expired()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            try:
                await self.send(channel, message)  # never suspends: a put_nowait
            except ChannelFull:
                pass
