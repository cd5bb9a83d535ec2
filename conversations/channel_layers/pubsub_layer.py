"""The Pub/Sub channel layer (`SUPPORT_CHANNEL_LAYER=redis-pubsub`), made honest about
Redis going away.

channels_redis's `RedisPubSubChannelLayer` reads each Redis shard's subscription in a
background task. When the connection drops (Redis restarted, or unreachable) that task
logs the error, sleeps and reads again, and redis-py resubscribes on reconnect, so the
consumers never learn that every event published meanwhile was lost: their sockets stay
open and silently miss messages. Here the reading task, on such an error, puts one
`layer.lost` message (`redis_layer.LOST_MESSAGE_TYPE`) in the queue of every channel of
this process that is in a group, exactly as the list-based layer does: each consumer
closes with 4503 and its client reconnects and catches up by `seq`. A channel hears of
one outage once; the next successful read ends the outage.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer as _ChannelsPubSubLayer
from channels_redis.pubsub import RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close

from conversations.channel_layers.redis_layer import LOST_MESSAGE_TYPE, is_outage

logger = logging.getLogger(__name__)
_RETRY_MAX_SECONDS = 1.0


class _Shard(RedisSingleShardConnection):
    """One shard's subscription, whose reader reports an outage to the members."""

    def __init__(self, host: Any, channel_layer: Any) -> None:
        super().__init__(host, channel_layer)
        self._told: set[str] = set()

    def _tell_members(self, exc: BaseException) -> None:
        layer = self.channel_layer
        members = {c for channels in layer.groups.values() for c in channels if c in layer.channels}
        new = members - self._told
        if new:
            logger.warning("Pub/Sub layer lost Redis (%s); closing %s live streams", type(exc).__name__, len(new))
        notice = layer.channel_layer.serialize({"type": LOST_MESSAGE_TYPE})
        for channel in new:
            layer.channels[channel].put_nowait(notice)
        self._told |= new

    async def _do_receiving(self) -> None:
        delay = 0.05
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._told.clear()
                    delay = 0.05
                    self._receive_message(message)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, GeneratorExit):
                raise
            except Exception as exc:
                if is_outage(exc):
                    self._tell_members(exc)
                else:
                    logger.exception("Unexpected exception in the Pub/Sub receive task")
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shards: list[_Shard] = [_Shard(shard.host, self) for shard in self._shards]


class RedisPubSubChannelLayer(_ChannelsPubSubLayer):
    def _get_layer(self) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
