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
- Losing Redis is detected, not suffered (guarantee 8). When a command fails because
  Redis is unreachable, restarted or hung, events may have been missed and a restarted
  Redis has forgotten every group. The layer then (once per outage) drops its idle
  pooled connections, so nobody is handed a dead one afterwards, and puts a
  `layer.lost` message (`LOST_MESSAGE_TYPE`) in the queue of every channel of this
  process that joined a group: each consumer learns its live stream broke and closes
  with 4503, and its client reconnects and catches up by `seq`. A process's receive
  loop never raises for an outage: it waits (backing off to a second) until Redis
  answers again, so no consumer dies with a 1011. `group_discard` during an outage is
  a no-op (the membership died with Redis, or expires). A pool that is merely busy
  ("No connection available") is not an outage.
  A restart can also pass unseen by the commands: redis-py reconnects a dropped
  connection on its next use, so a process whose commands happened to fall outside a
  short restart would carry on with group memberships Redis no longer holds, and its
  sockets would stay open and deaf. So while the process has members, a watch reads
  Redis's `run_id` every `WATCH_SECONDS`: a new `run_id` is a restart, handled as an
  outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections import defaultdict, deque
from typing import Any

from channels_redis.core import RedisChannelLayer as _ChannelsRedisLayer
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# The message a consumer gets when the layer lost Redis: its live stream has a hole and
# its group membership may be gone. Consumers handle it as `layer_lost`.
LOST_MESSAGE_TYPE = "layer.lost"
_OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
_POOL_BUSY = "No connection available."
_RETRY_MAX_SECONDS = 1.0
WATCH_SECONDS = 1.0


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means Redis is away (not a busy local pool, not a bug)."""
    return isinstance(exc, _OUTAGE_ERRORS) and str(exc) != _POOL_BUSY

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
        # This process's channels that joined groups: who must hear of an outage.
        self._members: dict[str, set[str]] = {}
        self._healthy = True
        # The restart watch of each event loop the layer is used on, and the run_id it saw.
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._run_id: str | None = None

    # --- outages ----------------------------------------------------------------------
    async def _outage(self, exc: BaseException) -> list[str]:
        """Redis failed a command: tell every member channel of this process (once per
        channel: it leaves the register), and on the first failure of an outage drop
        the idle pooled connections, which would otherwise be handed out dead."""
        if self._healthy:
            self._healthy = False
            logger.warning("channel layer lost Redis (%s); closing %s live streams", type(exc).__name__,
                           len(self._members))
            for index in range(self.ring_size):
                try:
                    await self.connection(index).connection_pool.disconnect(inuse_connections=False)
                except Exception:  # a pool of a closed loop: nothing to keep alive there
                    logger.debug("could not drop pooled connections", exc_info=True)
        self._run_id = None  # the next watch reads the Redis that answers after this
        members, self._members = list(self._members), {}
        for channel in members:
            self.receive_buffer[channel].put_nowait({"type": LOST_MESSAGE_TYPE})
        return members

    async def _guarded(self, call: Any) -> Any:
        try:
            result = await call
        except Exception as exc:
            if is_outage(exc):
                await self._outage(exc)
            raise
        self._healthy = True
        return result

    def _watch(self) -> None:
        """Start this loop's restart watch, unless it runs."""
        loop = asyncio.get_running_loop()
        task = self._watches.get(loop)
        if task is None or task.done():
            self._watches[loop] = loop.create_task(self._watch_run_id())

    async def _watch_run_id(self) -> None:
        while self._members:
            try:
                info = await self.connection(0).info("server")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_outage(exc):
                    await self._outage(exc)
                    # Remembered members are told; new ones restart the watch.
                    return
                logger.debug("restart watch could not read Redis's run_id", exc_info=True)
            else:
                run_id = str(info.get("run_id", ""))
                if self._run_id is not None and run_id and run_id != self._run_id:
                    await self._outage(RedisConnectionError(f"Redis restarted (run_id {run_id[:8]})"))
                    self._healthy = True
                self._run_id = run_id or None
            await asyncio.sleep(WATCH_SECONDS)

    def _is_local(self, channel: str) -> bool:
        return "!" in channel and self.client_prefix in channel

    async def group_add(self, group: str, channel: str) -> None:
        # Registered first: an outage noticed while this add is in flight must reach it.
        if self._is_local(channel):
            self._members.setdefault(channel, set()).add(group)
            self._watch()
        await self._guarded(super().group_add(group, channel))

    async def group_discard(self, group: str, channel: str) -> None:
        groups = self._members.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._members[channel]
        try:
            await self._guarded(super().group_discard(group, channel))
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The membership died with Redis, or expires after group_expiry.

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        await self._guarded(super().send(channel, message))

    async def readiness_check(self) -> None:
        """One message through Redis and back, on a channel of its own: it does not
        queue behind this process's consumers on the shared receive path."""
        channel = f"readyz.{uuid.uuid4().hex}"
        await self.send(channel, {"type": "readyz.ping"})
        message = await self.receive(channel)
        if message.get("type") != "readyz.ping":
            raise RuntimeError("channel layer returned another message")

    # --- receiving --------------------------------------------------------------------
    async def receive_single(self, channel: str) -> tuple[Any, dict[str, Any]]:
        # channels_redis calls this under its receive lock: one caller per layer at a time.
        if "!" not in channel:
            return await self._guarded(super().receive_single(channel))
        delay = 0.05
        while True:
            asked_redis = not self._prefetched[channel]
            try:
                result = await self._receive_process_queue(channel)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                if await self._outage(exc):
                    # The notices are in the members' buffers; an empty fan-out releases
                    # the receive lock so their consumers see them now.
                    return [], {}
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
                continue
            if asked_redis:  # a prefetched message proves nothing about Redis
                self._healthy = True
            return result

    async def _receive_process_queue(self, channel: str) -> tuple[Any, dict[str, Any]]:
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
        for task in list(self._watches.values()):
            task.cancel()
        self._prefetched.clear()
        self._members.clear()
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
        await self._guarded(self._group_send(group, message))

    async def _group_send(self, group: str, message: dict[str, Any]) -> None:
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
