"""The scale-mode channel layer: channels_redis's `RedisChannelLayer` on a blocking
connection pool.

Every Redis command of the layer borrows a pooled connection for its round trip, and a
`group_send` is four of them. redis-py's default pool holds at most 100 connections per
event loop and *raises* `MaxConnectionsError` when they are all busy, so under load
(hundreds of answers streaming at once, or a burst of widget sockets joining their
groups) sends failed outright and live events were lost. Here a caller that finds every
connection busy waits its turn, up to `pool_timeout` seconds, and the pool size is a
setting (`SUPPORT_REDIS_MAX_CONNECTIONS`). Delivery semantics are channels_redis's own.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(_ChannelsRedisLayer):
    def __init__(self, *args: Any, max_connections: int = 200, pool_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinel or host/port entries: channels_redis's pool
            return super().create_pool(index)
        address = host.pop("address")
        return BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )
