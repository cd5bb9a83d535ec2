"""The per-process engine: where turns run and how events leave the process.

Each process (a daphne worker, `manage.py chat`, a test) has one `Engine`, bound to one
event loop: the server's loop under daphne (bound by the ASGI entry point), or a private
background loop when the caller has none (a management command, a synchronous test).
The services never import it: they reach it through the engine port
(`conversations.services.engine_port`: publish, dispatch and interrupt on commit), which
`ConversationsConfig.ready` points at this process's engine.

Nothing here is the source of truth. Which turn runs is decided by the database claim
in `conversations.services.leases` (a lease that expires), so several processes can
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
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from channels.layers import get_channel_layer
from django.db import close_old_connections

from conversations.agent.events import CHANNEL_MESSAGE_TYPE, EngineEvent, group_name, turn_failed_event
from conversations.agent.runner import MORE_QUEUED, NONE_QUEUED, NOTHING_CLAIMED, run_next_turn
from conversations.conf import platform_setting
from conversations.services.leases import turns_expire_leases, turns_orphaned_queues

if TYPE_CHECKING:
    from conversations.agent.lease import LeaseKeeper

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _db_job(fn: Callable[..., T]) -> Callable[..., T]:
    def run(*args: Any, **kwargs: Any) -> T:
        # Like a request: drop this thread's connection first if it broke or is too old.
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            # And like a request's end: with PostgreSQL's pool (CONN_MAX_AGE=0) this hands
            # the connection back now, so an idle thread holds none of the process's
            # pool; with SQLite's persistent connection it only flags a health check.
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
        self._private_loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Conversations being drained, per loop: {conversation id: re-check requested}.
        self._draining: dict[str, bool] = {}
        self._running: dict[str, LeaseKeeper] = {}  # turn id -> its LeaseKeeper
        self._bind_lock = threading.Lock()
        self._db_executor: ThreadPoolExecutor | None = None
        self._tool_executor: ThreadPoolExecutor | None = None
        self._sweeper: asyncio.Task[Any] | None = None
        # The last publish of each conversation still sending: {conversation id: done}.
        self._publishing: dict[str, asyncio.Future[None]] = {}

    # --- executors ------------------------------------------------------------------
    # The ORM is synchronous. Running it through a bounded pool of our own (not the single
    # thread `sync_to_async` shares by default) means one conversation's slow database
    # work never delays another conversation's first token; tools get a pool of their
    # own so a slow tool cannot take the database threads either.
    @property
    def db_executor(self) -> ThreadPoolExecutor:
        if self._db_executor is None:
            with self._bind_lock:
                if self._db_executor is None:
                    self._db_executor = ThreadPoolExecutor(
                        max_workers=platform_setting("DB_THREADS"), thread_name_prefix="engine-db"
                    )
        return self._db_executor

    @property
    def tool_executor(self) -> ThreadPoolExecutor:
        if self._tool_executor is None:
            with self._bind_lock:
                if self._tool_executor is None:
                    self._tool_executor = _ConnectionReturningPool(
                        max_workers=platform_setting("TOOL_THREADS"), thread_name_prefix="engine-tool"
                    )
        return self._tool_executor

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a synchronous ORM function on the engine's database threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.db_executor, partial(_db_job(fn), *args, **kwargs))

    # --- loop binding ---------------------------------------------------------------
    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Run turns on `loop` (default: the running loop) from now on.

        Rebinding (a test's loop, then the server's) moves the sweeper to the new loop;
        turns already running on the old loop finish there."""
        loop = loop or asyncio.get_running_loop()
        with self._bind_lock:
            if self.loop is loop:
                return
            old_loop, old_sweeper = self.loop, self._sweeper
            self.loop = loop
            self._sweeper = None
            self._draining = {}
            self._tasks = {t for t in list(self._tasks) if t.get_loop() is loop}
        if old_sweeper is not None and old_loop is not None and not old_loop.is_closed():
            try:
                old_loop.call_soon_threadsafe(old_sweeper.cancel)
            except RuntimeError:  # closed in the meantime
                pass
        if platform_setting("SWEEP_INTERVAL_SECONDS") > 0:
            self.submit(self._start_sweeper())

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        """The bound loop if it is running; otherwise the engine's private loop (one
        background thread per process, started on first need)."""
        loop = self.loop
        if loop is not None and loop.is_running():
            return loop
        with self._bind_lock:
            private = self._private_loop
            if private is None or not private.is_running():
                private = self._start_private_loop()
        self.bind(private)
        return private

    def _start_private_loop(self) -> asyncio.AbstractEventLoop:
        """Precondition: holding `_bind_lock`."""
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=serve, name="engine-loop", daemon=True).start()
        ready.wait()
        self._private_loop = loop
        return loop

    def submit(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Schedule `coro` on the engine loop from any thread; the engine owns the task."""
        loop = self._ensure_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._own(loop.create_task(coro))
            return
        try:
            loop.call_soon_threadsafe(lambda: self._own(loop.create_task(coro)))
        except RuntimeError:  # the bound loop closed just now: use the private one
            private = self._ensure_loop()
            private.call_soon_threadsafe(lambda: self._own(private.create_task(coro)))

    def _own(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("engine task failed", exc_info=task.exception())

    # --- events ---------------------------------------------------------------------
    async def publish(self, conversation_id: UUID | str, event: EngineEvent) -> None:
        """Send one event to the conversation's subscribers, after every event published
        for it before. A Redis `group_send` takes several round trips, so two sends in
        flight at once can overtake each other: a client would see `turn.completed`
        before the answer's `message`."""
        layer = get_channel_layer()
        if layer is None:
            return
        key = str(conversation_id)
        loop = asyncio.get_running_loop()
        previous = self._publishing.get(key)
        done: asyncio.Future[None] = loop.create_future()
        self._publishing[key] = done
        try:
            if previous is not None and not previous.done() and previous.get_loop() is loop:
                await asyncio.wait([previous])
            await self._send(layer, conversation_id, event)
        finally:
            done.set_result(None)
            if self._publishing.get(key) is done:
                del self._publishing[key]

    async def _send(self, layer: Any, conversation_id: UUID | str, event: EngineEvent) -> None:
        message = {"type": CHANNEL_MESSAGE_TYPE, "event": event}
        for attempt in (1, 2):
            try:
                await layer.group_send(group_name(conversation_id), message)
                return
            except Exception:  # a lost hint is recoverable by seq; a crashed turn is not
                # Once more: after a Redis restart, a pooled connection fails once.
                if attempt == 2:
                    logger.warning("could not publish %s", event.get("type"), exc_info=True)

    def publish_soon(self, conversation_id: UUID | str, event: EngineEvent) -> None:
        """`publish` as a task of the engine's loop (from any thread; the engine port
        calls it once a write commits)."""
        self.submit(self.publish(conversation_id, event))

    # --- turns ----------------------------------------------------------------------
    def dispatch(self, conversation_id: UUID | str) -> None:
        self.submit(self.drain(str(conversation_id)))

    async def drain(self, conversation_id: str) -> None:
        """Run this conversation's queued turns one at a time, in order, while this
        process can claim them. A second call while draining just asks for a re-check."""
        draining = self._draining
        if conversation_id in draining:
            draining[conversation_id] = True
            return
        draining[conversation_id] = False
        try:
            dispatched = True
            while True:
                draining[conversation_id] = False
                known = await run_next_turn(conversation_id, engine=self, dispatched=dispatched)
                # A completion says whether another turn is queued (read under its lock):
                # then no look of our own is needed. A dispatch during the turn asks for one.
                dispatched = known == MORE_QUEUED
                if known in (NOTHING_CLAIMED, NONE_QUEUED) and not draining.get(conversation_id):
                    return
        finally:
            draining.pop(conversation_id, None)

    @contextmanager
    def running(self, turn_id: UUID | str, keeper: LeaseKeeper) -> Iterator[None]:
        """Register a turn running in this process so `interrupt` can reach it."""
        self._running[str(turn_id)] = keeper
        try:
            yield
        finally:
            self._running.pop(str(turn_id), None)

    def interrupt(self, turn_id: UUID | str, signal: str = "cancel") -> None:
        """Stop a turn this process is running now, without waiting for its next lease
        renewal (from any thread). Turns running elsewhere see the request on renewal."""
        loop = self.loop
        if loop is None or loop.is_closed() or str(turn_id) not in self._running:
            return

        def stop() -> None:
            keeper = self._running.get(str(turn_id))
            if keeper is not None:
                keeper.interrupt(signal)

        try:
            loop.call_soon_threadsafe(stop)
        except RuntimeError:
            pass

    async def _start_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.current_task()
            await self._sweep_forever()

    async def _sweep_forever(self) -> None:
        interval = platform_setting("SWEEP_INTERVAL_SECONDS")
        while True:
            try:
                await self.sweep()
            except RuntimeError as exc:
                if "after shutdown" in str(exc) or "interpreter shutdown" in str(exc):  # exiting
                    return
                logger.warning("sweep failed: %s", exc, exc_info=True)
            except Exception:
                logger.warning("sweep failed", exc_info=True)
            await asyncio.sleep(interval)

    async def sweep(self) -> None:
        """Fail turns whose lease expired and dispatch conversations with orphaned queues."""
        for turn in await self.db(turns_expire_leases):
            await self.publish(turn.conversation_id, turn_failed_event(turn))
            self.dispatch(turn.conversation_id)
        for conversation_id in await self.db(turns_orphaned_queues):
            self.dispatch(conversation_id)

    def busy(self) -> bool:
        """True while a turn task (not the sweeper) is unfinished in this process."""
        return any(t is not self._sweeper and not t.done() for t in list(self._tasks))

    async def wait_idle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until no turn task of the running loop is unfinished (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while pending := [
                t for t in list(self._tasks)
                if t is not self._sweeper and not t.done() and t.get_loop() is loop
            ]:
                await asyncio.wait(pending)

    async def close(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Stop the sweeper and wait for this loop's turns to finish (shutdown)."""
        sweeper = self._sweeper
        if sweeper is not None and sweeper.get_loop() is asyncio.get_running_loop():
            sweeper.cancel()
        self._sweeper = None
        await self.wait_idle(timeout)


engine = Engine()
