"""`manage.py bench_engine`: what the engine itself costs, with the model taken out.

Two figures, on a scratch copy of the configured database (created, migrated and
dropped here; the real database is not touched):

- Platform overhead per turn: a customer message is posted through `message_post` and
  the turn runs on the engine exactly as in production (claim, plan and history
  selection, the official SDK streaming from a provider, storing the answer, events
  on the channel layer) until the `turn.completed` event arrives. The provider is a
  zero-latency one served in-process through an HTTP transport; the time it spends
  producing its stream is subtracted, so what remains is the platform's own time
  (the SDK's request building and event parsing included).
- History selection at scale: `select_history` for the newest message of a
  conversation with 10,000 stored items, under the default agent budget.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections, transaction
from django.db.backends.utils import CursorWrapper

from conversations.agent import engine as engine_module
from conversations.agent import wire
from conversations.agent.engine import engine
from conversations.agent.events import group_name
from conversations.agent.history import select_history
from conversations.agent.progress import observe_turns
from conversations.agent.provider import register_transport
from conversations.models import Agent, Message
from conversations.models.message import MessageKind
from conversations.services.conversations import conversation_create
from conversations.services.items import items_append, items_bulk_append
from conversations.services.locks import conversation_lock
from conversations.services.messages import message_post

BENCH_URL = "http://bench-provider.internal/v1"
KEY_ENV = "SUPPORT_BENCH_PROVIDER_KEY"
WORDS = (
    "order", "shipping", "delivery", "parcel", "refund", "return", "exchange", "warranty",
    "grinder", "kettle", "filter", "frother", "invoice", "payment", "card", "address",
    "courier", "tracking", "delayed", "damaged", "missing", "box", "colour", "size",
    "replacement", "discount", "voucher", "account", "password", "email", "weekend", "tomorrow"
)


class ZeroLatencyProvider(httpx2.AsyncBaseTransport):
    """Answers every Responses request at once with a streamed text of `DELTAS` deltas."""

    deltas = 20

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(await request.aread())
        writer = wire.EventWriter(body)
        words = [f"word{index} " for index in range(self.deltas - 1)] + ["done."]
        events = [*writer.created(), *writer.message(words), writer.completed(wire.usage(50, self.deltas))]
        payload = b"".join(wire.sse(event) for event in events)
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_OneChunk(payload)
        )


class _OneChunk(httpx2.AsyncByteStream):
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.payload


@dataclass(frozen=True)
class _Timing:
    total: float  # ms, message_post called -> turn.completed received
    post: float  # ms in message_post
    provider: float  # ms inside the provider call (SDK + provider)


class _Run:
    """The measured turns: timings, process CPU time (every thread: the engine's loop
    and its database threads) and the SQL statements every connection executed."""

    def __init__(self) -> None:
        self.timings: list[_Timing] = []
        self.statements = 0
        self.transactions = 0
        self.events = 0  # events the conversation's subscriber received
        self.cpu = 0.0
        self.wall = 0.0
        self._counting = False
        self.trace: list[str] | None = None  # the statements of one turn, with --trace-sql
        # Every cursor of every thread's connection (the engine's database threads
        # included) runs its statements through this one method.
        self._original = CursorWrapper._execute_with_wrappers  # type: ignore[attr-defined]  # private, not in the stubs
        run = self

        def counted(cursor: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
            if run._counting:
                run.statements += 1
                if run.trace is not None:
                    run.trace.append(f"[{threading.current_thread().name}] {sql[:150]}")
                if sql.startswith(("BEGIN", "SAVEPOINT")):
                    run.transactions += 1
            return run._original(cursor, sql, *args, **kwargs)

        CursorWrapper._execute_with_wrappers = counted  # type: ignore[attr-defined]  # private, not in the stubs
        # CPU of each database job, by function (thread time of the engine's db threads).
        self.jobs: dict[str, float] = {}
        self._db_job = engine_module._db_job

        def timed_job(fn: Any) -> Any:
            job = run._db_job(fn)

            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return job(*args, **kwargs)
                finally:
                    if run._counting:
                        name = getattr(fn, "__name__", type(fn).__name__)
                        run.jobs[name] = run.jobs.get(name, 0.0) + time.thread_time() - started

            return timed

        engine_module._db_job = timed_job

    @property
    def counting(self) -> bool:
        return self._counting

    def start(self) -> None:
        """Count from now (stop() ends the segment; segments add up)."""
        self._counting = True
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def stop(self) -> None:
        if self._counting:
            self._counting = False
            self.cpu += time.process_time() - self._cpu
            self.wall += time.perf_counter() - self._wall

    def close(self) -> None:
        CursorWrapper._execute_with_wrappers = self._original  # type: ignore[attr-defined]  # private, not in the stubs
        engine_module._db_job = self._db_job


def _conversation_of(agent: Agent, length: int, rng: random.Random) -> Any:
    """A new conversation holding `length` stored items (a realistic mix), answered."""
    conversation = conversation_create(agent=agent, channel="api")
    items = _items(rng, length)
    for start in range(0, len(items), 1000):
        with transaction.atomic():
            row = conversation_lock(conversation.pk)
            items_bulk_append(conversation=row, items=items[start : start + 1000])
    return conversation


def _items(rng: random.Random, count: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    call = 0
    while len(items) < count:
        items.append({"kind": MessageKind.USER, "text": sentence(rng, 8, 30)})
        if rng.random() < 0.15:
            call += 1
            call_id = f"call_{call}"
            items.append({"kind": MessageKind.FUNCTION_CALL, "tool_name": "lookup_order", "call_id": call_id,
                          "tool_arguments": json.dumps({"order_number": str(1000 + call), "email": None})})
            items.append({"kind": MessageKind.FUNCTION_OUTPUT, "tool_name": "lookup_order", "call_id": call_id,
                          "text": json.dumps({"order_number": str(1000 + call), "status": rng.choice(WORDS)})})
        items.append({"kind": MessageKind.ASSISTANT, "text": sentence(rng, 15, 60)})
    return items[:count]


@contextmanager
def scratch_database() -> Iterator[None]:
    connection = connections["default"]
    directory = tempfile.mkdtemp(prefix="bench-engine-")
    original = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = os.path.join(directory, "bench.sqlite3")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)
        shutil.rmtree(directory, ignore_errors=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def memory_mb() -> tuple[float, float]:
    """This process's resident memory now and at its peak, in MB (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return 0.0, 0.0
    return tuple(int(fields.get(name, "0 kB").split()[0]) / 1024 for name in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


class Command(BaseCommand):
    help = "Measure platform overhead per turn and history selection at 10,000 messages."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--turns", type=int, default=300, help="Measured turns (after warm-up).")
        parser.add_argument("--messages", type=int, default=10_000, help="Items in the large conversation.")
        parser.add_argument("--selections", type=int, default=100, help="Measured history selections.")
        parser.add_argument(
            "--length", type=int, nargs="+", default=[0],
            help="Items already stored in each conversation the turns run in (one run per value; "
            "e.g. --length 10 1000 10000).",
        )
        parser.add_argument(
            "--per-conversation", type=int, default=10,
            help="Turns per conversation before a fresh one of --length items is made.",
        )
        parser.add_argument("--deltas", type=int, default=20, help="Text deltas per answer.")
        parser.add_argument(
            "--backlog", type=int, default=0,
            help="Store a conversation of this many items without vectors before each run, so the "
            "history embedding thread works through it while the turns run (a returning imported "
            "customer); with semantic history on.",
        )
        parser.add_argument("--trace-sql", action="store_true", help="Print the statements of the last turn.")
        parser.add_argument("--no-selection", action="store_true", help="Skip the history-selection figure.")
        parser.add_argument(
            "--debug-queries", action="store_true",
            help="Keep DEBUG's query logging on (off by default, as in production: on SQLite it "
            "runs an extra query per statement to format the log).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0}
        settings.DEBUG = settings.DEBUG and options["debug_queries"]
        os.environ[KEY_ENV] = "bench"
        ZeroLatencyProvider.deltas = max(1, options["deltas"])
        register_transport(BENCH_URL, ZeroLatencyProvider)
        vendor = connections["default"].vendor
        idle_rss, _peak = memory_mb()  # set up (apps, models, the engine's modules), no turn yet
        with scratch_database():
            agent = Agent.objects.create(
                name="Bench agent", instructions="You are a support assistant.",
                tools=["lookup_order", "handoff_to_human"], provider_base_url=BENCH_URL,
                provider_api_key_env=KEY_ENV, model="gpt-4.1-mini", is_default=True,
            )
            runs = [
                (length, asyncio.run(self._turns(
                    agent, options["turns"], length, options["per_conversation"], options["trace_sql"],
                    options["backlog"],
                )))
                for length in options["length"]
            ]
            selection_figures = (
                None if options["no_selection"]
                else self._selection(agent, options["messages"], options["selections"])
            )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.stdout.write(
            f"database: {vendor} (query logging {'on' if settings.DEBUG else 'off'}); "
            f"{options['turns']} turns after warm-up per run, one at a time, {ZeroLatencyProvider.deltas} deltas "
            f"per answer; {os.cpu_count()} CPUs, load average {load}"
            + (f"; a backlog of {options['backlog']:,} items to embed" if options["backlog"] else "")
        )
        rss, peak = memory_mb()
        self.stdout.write(
            f"process memory: {idle_rss:.0f} MB resident before the first turn, {rss:.0f} MB after the runs, "
            f"peak {peak:.0f} MB"
        )
        for length, run in runs:
            turns = run.timings
            overhead = [t.total - t.provider for t in turns]
            self.stdout.write(
                f"conversations of {length:,} items (+{options['per_conversation']} turns each): "
                f"CPU {run.cpu * 1000 / len(turns):.2f} ms per turn (process time, all threads), "
                f"{run.statements / len(turns):.1f} SQL statements and {run.transactions / len(turns):.1f} "
                f"transactions per turn, {run.events / len(turns):.1f} events per turn, "
                f"{len(turns) / run.wall:.1f} turns/s one at a time"
            )
            self.stdout.write(
                "  platform overhead per turn (model time excluded): "
                f"p50 {statistics.median(overhead):.2f} ms, p99 {percentile(overhead, 0.99):.2f} ms"
            )
            for label, values in (
                ("  of which posting the message", [t.post for t in turns]),
                ("  provider call (SDK + zero-latency provider)", [t.provider for t in turns]),
                ("  end to end, post to turn.completed event", [t.total for t in turns]),
            ):
                self.stdout.write(
                    f"{label}: p50 {statistics.median(values):.2f} ms, p99 {percentile(values, 0.99):.2f} ms"
                )
            jobs = ", ".join(f"{name} {cpu * 1000 / len(turns):.2f}" for name, cpu in
                             sorted(run.jobs.items(), key=lambda kv: -kv[1]))
            self.stdout.write(
                f"  CPU ms per turn in database jobs: {jobs}; the rest (event loop: SDK, events, "
                f"provider): {(run.cpu - sum(run.jobs.values())) * 1000 / len(turns):.2f}"
            )
            if run.trace:
                self.stdout.write("  statements of the last turn:\n    " + "\n    ".join(run.trace))
        if selection_figures is not None:
            timings, selection = selection_figures
            self.stdout.write(
                f"history selection at {options['messages']:,} messages ({len(timings)} runs, budget "
                f"{selection.budget}): p50 {statistics.median(timings):.2f} ms, "
                f"p99 {percentile(timings, 0.99):.2f} ms; selected {len(selection.items)} items, "
                f"{selection.tokens} tokens (read {selection.considered} rows)"
            )

    async def _turns(
        self, agent: Agent, count: int, length: int, per_conversation: int, trace: bool = False, backlog: int = 0
    ) -> _Run:
        engine.bind()
        layer = get_channel_layer()
        recorded: asyncio.Queue[tuple[str, float]] = asyncio.Queue()  # the runner reports on this loop
        stop_observing = observe_turns(lambda p: recorded.put_nowait((p.turn_id, p.provider_seconds)))
        warmup = 20
        run = _Run()
        conversation: Any = None
        channel = ""
        rng = random.Random(7)
        if backlog:  # stored now, embedded by the background thread while the turns run
            await engine.db(_conversation_of, agent, backlog, random.Random(3))
        try:
            for index in range(warmup + count):
                if index % per_conversation == 0:  # a fresh conversation of `length` items (not measured)
                    run.stop()
                    conversation = await engine.db(_conversation_of, agent, length, rng)
                    channel = await layer.new_channel()
                    await layer.group_add(group_name(conversation.pk), channel)
                if index >= warmup and not run.counting:
                    run.start()
                if trace and index == warmup + count - 1:
                    run.trace = []
                started = time.perf_counter()
                posted = await engine.db(message_post, conversation=conversation, text=sentence(rng, 6, 20))
                post_time = time.perf_counter() - started
                assert posted.turn is not None  # a customer message always queues a turn here
                turn_id = str(posted.turn.id)
                while True:
                    event = (await layer.receive(channel))["event"]
                    if run.counting:
                        run.events += 1
                    if event.get("turn") == turn_id and event["type"] in ("turn.completed", "turn.failed"):
                        break
                elapsed = time.perf_counter() - started
                if event["type"] == "turn.failed":
                    raise RuntimeError(f"bench turn failed: {event['error']}")
                recorded_turn, provider_seconds = await recorded.get()
                assert recorded_turn == turn_id, "turns run one at a time here"
                if index >= warmup:
                    run.timings.append(_Timing(elapsed * 1000, post_time * 1000, provider_seconds * 1000))
            await engine.wait_idle()
            run.stop()
        finally:
            stop_observing()
            run.close()
        return run

    def _selection(self, agent: Agent, count: int, runs: int) -> tuple[list[float], Any]:
        conversation = conversation_create(agent=agent, channel="imported")
        rng = random.Random(11)
        items = _items(rng, count - 1)
        for start in range(0, len(items), 1000):
            with transaction.atomic():
                items_append(conversation=conversation, items=items[start : start + 1000])
        with transaction.atomic():
            (current,) = items_append(
                conversation=conversation,
                items=[{"kind": MessageKind.USER, "text": "Where is my grinder? The courier says the parcel is delayed."}],
            )
        assert Message.objects.filter(conversation=conversation).count() == count
        timings = []
        selection = None
        for index in range(runs + 5):
            started = time.perf_counter()
            selection = select_history(conversation_id=conversation.pk, current=current, budget=agent.history_token_budget)
            if index >= 5:
                timings.append((time.perf_counter() - started) * 1000)
        return timings, selection
