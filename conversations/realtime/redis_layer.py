"""The scale-mode channel layer: channels_redis's `RedisChannelLayer` with a blocking
connection pool, a `group_send` of two round trips instead of four, and a receive that
takes a process's waiting messages in one round trip.

- The pool. Every Redis command of the layer borrows a pooled connection for its round
  trip. redis-py's default pool holds at most 100 connections per event loop and
  *raises* `MaxConnectionsError` when they are all busy, so under load (hundreds of
  answers streaming at once, or a burst of widget sockets joining their groups) sends
  failed outright and live events were lost. Here a caller that finds every connection
  busy waits its turn, up to `pool_timeout` seconds; the size is a setting
  (`SUPPORT_REDIS_MAX_CONNECTIONS`).
- `group_send`. channels_redis sends four commands one after another (drop expired
  members, read the members, drop expired messages, then a Lua script that enqueues
  with a capacity check), and sends the script's source every time. Every event the
  engine publishes is a `group_send`, and under load their round trips and redis-py's
  per-command overhead were the largest share of the web processes' Redis time. Here the
  first two go in one pipeline and the last two in one cached script (EVALSHA). What is
  stored, where, with which expiry and capacity rule, is exactly channels_redis's, so
  its `receive` reads it unchanged.
- Receiving. All websocket consumers of one process share one Redis queue (their
  channels' non-local part), and channels_redis pops it one message at a time with four
  commands each (restore the backup, blocking pop, back up, clean the backup). Under
  load that was the largest Redis cost on the receiving side, and a queue that fell
  behind hit its capacity and dropped events for every consumer of the process. Here,
  when messages are waiting, up to `prefetch` are taken in one `ZPOPMIN` and handed out
  in order; only an empty queue falls back to channels_redis's blocking pop. A message
  taken this way is in the process's memory, not in Redis's backup queue: if the
  process dies it is lost, which an event hint may be (clients catch up by `seq`).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from typing import Any

from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer
from redis.asyncio import BlockingConnectionPool

logger = logging.getLogger(__name__)

# KEYS: the channels' message keys. ARGV: one message per key, then one capacity per
# key, then the enqueue time, the key expiry in seconds, and the cut-off score below
# which queued messages have expired. Returns how many channels were over capacity.
_ENQUEUE_FOR_CHANNELS = """
local count = #KEYS
local now = ARGV[2 * count + 1]
local expiry = ARGV[2 * count + 2]
local expired_before = ARGV[2 * count + 3]
local over_capacity = 0
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, expired_before)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


class RedisChannelLayer(_ChannelsRedisLayer):
    def __init__(
        self, *args: Any, max_connections: int = 200, pool_timeout: float = 5.0, prefetch: int = 200, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        self.prefetch = prefetch
        self._enqueue_script: Any = None
        # Messages taken from a process queue and not yet handed out, per queue.
        self._prefetched: defaultdict[str, deque[tuple[Any, dict[str, Any]]]] = defaultdict(deque)

    async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]:
        # channels_redis calls this under its receive lock: one caller per layer at a time.
        if "!" not in channel:
            return await super().receive_single(channel)
        waiting = self._prefetched[channel]
        if not waiting:
            taken = await self.connection(self.consistent_hash(channel)).zpopmin(self.prefix + channel, self.prefetch)
            for member, _score in taken:
                message = self.deserialize(member)
                waiting.append((message.pop("__asgi_channel__", channel), message))
        if waiting:
            return waiting.popleft()
        return await super().receive_single(channel)

    async def flush(self) -> None:
        self._prefetched.clear()
        await super().flush()

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel or host/port entries: channels_redis's pool
            return super().create_pool(index)
        address = host.pop("address")
        return BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert self.require_valid_group_name(group), "Group name not valid"
        key = self._group_key(group)
        connection = self.connection(self.consistent_hash(group))
        now = time.time()
        pipe = connection.pipeline(transaction=False)
        pipe.zremrangebyscore(key, min=0, max=int(now) - self.group_expiry)
        pipe.zrange(key, 0, -1)
        _, members = await pipe.execute()
        if not members:
            return
        channel_names = [member.decode("utf8") for member in members]
        by_connection, messages, capacities = self._map_channel_keys_to_connection(channel_names, message)
        if self._enqueue_script is None:
            self._enqueue_script = connection.register_script(_ENQUEUE_FOR_CHANNELS)
        for index, channel_keys in by_connection.items():
            args = [messages[k] for k in channel_keys] + [capacities[k] for k in channel_keys]
            args += [now, self.expiry, int(now) - int(self.expiry)]
            over_capacity = await self._enqueue_script(keys=channel_keys, args=args, client=self.connection(index))
            if over_capacity:
                logger.info("%s of %s channels over capacity in group %s", over_capacity, len(channel_names), group)
