"""The per-process engine: where turns run and how events leave the process.

Each process (a daphne worker, `manage.py chat`, a test) has one `Engine`, bound to one
event loop: the server's loop under daphne (bound by the ASGI entry point), or a private
background loop when the caller has none (a management command, a synchronous test).
Every door reaches it the same way: services call `dispatch_on_commit` after they queue
a turn and `publish_on_commit` after they store something, from any thread.

Nothing here is the source of truth. Which turn runs is decided by the database claim
in `conversations.services.turns` (a lease that expires), so several processes can
share one database: a process that is asked to drain a conversation simply tries to
claim its next queued turn and stops if another process holds it. A sweeper fails
turns whose lease expired (their process died) and picks up queued turns that no
process dispatched, so no conversation is ever stuck.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync
from channels.layers import get_channel_layer
from django.db import close_old_connections, transaction

from conversations.agent.events import CHANNEL_MESSAGE_TYPE, group_name
from conversations.conf import platform_setting

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _db_job(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any, **kwargs: Any) -> T:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return run


class _ConnectionReturningPool(ThreadPoolExecutor):
    """Worker threads that give back their database connection after every job. Tools
    query the ORM too; without this a tool thread would keep its connection checked out
    of the process's pool for as long as the thread lives."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Any:
        return super().submit(_db_job(fn), *args, **kwargs)


class Engine:
    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._draining: dict[str, bool] = {}
        self._bind_lock = threading.Lock()
        self._db_executor: ThreadPoolExecutor | None = None
        self._tool_executor: ThreadPoolExecutor | None = None
        self._sweeper: asyncio.Task[Any] | None = None

    # --- executors ------------------------------------------------------------------
    # The ORM is synchronous. Running it through a bounded pool of our own (not the single
    # thread `sync_to_async` shares by default) means one conversation's slow database
    # work or slow tool never delays another conversation's first token.
    @property
    def db_executor(self) -> ThreadPoolExecutor:
        if self._db_executor is None:
            self._db_executor = ThreadPoolExecutor(
                max_workers=platform_setting("DB_THREADS"), thread_name_prefix="engine-db"
            )
        return self._db_executor

    @property
    def tool_executor(self) -> ThreadPoolExecutor:
        if self._tool_executor is None:
            self._tool_executor = _ConnectionReturningPool(
                max_workers=platform_setting("TOOL_THREADS"), thread_name_prefix="engine-tool"
            )
        return self._tool_executor

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous ORM function on the engine's database threads."""
        runner = SyncToAsync(_db_job(fn), thread_sensitive=False, executor=self.db_executor)
        return await runner(*args, **kwargs)

    # --- loop binding ---------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Run turns on `loop` (default: the running loop) from now on."""
        loop = loop or asyncio.get_running_loop()
        with self._bind_lock:
            if self.loop is loop:
                return
            self.loop = loop
            self._draining.clear()
            self._tasks = set()
            self._sweeper = None
        if platform_setting("SWEEP_INTERVAL_SECONDS") > 0:
            self.submit(self._start_sweeper())

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        loop = self.loop
        if loop is not None and not loop.is_closed() and loop.is_running():
            return loop
        with self._bind_lock:
            ready = threading.Event()
            new_loop = asyncio.new_event_loop()

            def serve() -> None:
                asyncio.set_event_loop(new_loop)
                new_loop.call_soon(ready.set)
                new_loop.run_forever()

            self._thread = threading.Thread(target=serve, name="engine-loop", daemon=True)
            self._thread.start()
            ready.wait()
        self.bind(new_loop)
        return new_loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Schedule `coro` on the engine loop from any thread; the engine owns the task."""
        loop = self._ensure_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._own(loop.create_task(coro))
        else:
            loop.call_soon_threadsafe(lambda: self._own(loop.create_task(coro)))

    def _own(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("engine task failed", exc_info=task.exception())

    # --- events ---------------------------------------------------------------------
    async def publish(self, conversation_id: Any, event: dict[str, Any]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": CHANNEL_MESSAGE_TYPE, "event": event}
        for attempt in (1, 2):
            try:
                await layer.group_send(group_name(conversation_id), message)
                return
            except Exception:  # a lost hint is recoverable by seq; a crashed turn is not
                # Once more: after a Redis restart, a pooled connection fails once.
                if attempt == 2:
                    logger.warning("could not publish %s", event.get("type"), exc_info=True)

    def publish_on_commit(self, conversation_id: Any, event: dict[str, Any]) -> None:
        transaction.on_commit(lambda: self.submit(self.publish(conversation_id, event)))

    # --- turns ----------------------------------------------------------------------
    def dispatch(self, conversation_id: Any) -> None:
        self.submit(self.drain(str(conversation_id)))

    def dispatch_on_commit(self, conversation_id: Any) -> None:
        transaction.on_commit(lambda: self.dispatch(conversation_id))

    async def drain(self, conversation_id: str) -> None:
        """Run this conversation's queued turns one at a time, in order, while this
        process can claim them. A second call while draining just asks for a re-check."""
        if conversation_id in self._draining:
            self._draining[conversation_id] = True
            return
        self._draining[conversation_id] = False
        try:
            from conversations.agent.runner import run_turn
            from conversations.services.turns import turn_claim_next

            while True:
                turn_id = await self.db(
                    turn_claim_next, conversation_id=conversation_id, owner=self.owner
                )
                if turn_id is None:
                    if self._draining.get(conversation_id):
                        self._draining[conversation_id] = False
                        continue
                    return
                await run_turn(turn_id, engine=self)
        finally:
            self._draining.pop(conversation_id, None)

    async def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.current_task()
            await self._sweep_forever()

    async def _sweep_forever(self) -> None:
        interval = platform_setting("SWEEP_INTERVAL_SECONDS")
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.warning("sweep failed", exc_info=True)
            await asyncio.sleep(interval)

    async def sweep(self) -> None:
        """Fail turns whose lease expired and dispatch conversations with orphaned queues."""
        from conversations.services.turns import turns_expire_leases, turns_orphaned_queues

        for turn in await self.db(turns_expire_leases):
            from conversations.agent.events import turn_failed_event

            await self.publish(turn.conversation_id, turn_failed_event(turn))
            self.dispatch(turn.conversation_id)
        for conversation_id in await self.db(turns_orphaned_queues):
            self.dispatch(conversation_id)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no turn task is running in this process (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(t for t in self._tasks if t is not self._sweeper and not t.done()):
            if loop.time() > deadline:
                raise TimeoutError("engine still busy")
            await asyncio.sleep(0.01)


engine = Engine()
