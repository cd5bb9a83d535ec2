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

from conversations.agent import wire
from conversations.agent.engine import engine
from conversations.agent.events import group_name
from conversations.agent.history import select_history
from conversations.agent.progress import observe_turns
from conversations.agent.provider import register_transport
from conversations.models import Agent, Message
from conversations.models.message import MessageKind
from conversations.services.conversations import conversation_create
from conversations.services.items import items_append
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
    """Answers every Responses request at once with a short streamed text."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(await request.aread())
        writer = wire.EventWriter(body)
        events = [*writer.created(), *writer.message(["Happy ", "to ", "help."]), writer.completed(wire.usage(50, 3))]
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


class Command(BaseCommand):
    help = "Measure platform overhead per turn and history selection at 10,000 messages."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--turns", type=int, default=300, help="Measured turns (after warm-up).")
        parser.add_argument("--messages", type=int, default=10_000, help="Items in the large conversation.")
        parser.add_argument("--selections", type=int, default=100, help="Measured history selections.")
        parser.add_argument(
            "--debug-queries", action="store_true",
            help="Keep DEBUG's query logging on (off by default, as in production: on SQLite it "
            "runs an extra query per statement to format the log).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0}
        settings.DEBUG = settings.DEBUG and options["debug_queries"]
        os.environ[KEY_ENV] = "bench"
        register_transport(BENCH_URL, ZeroLatencyProvider)
        vendor = connections["default"].vendor
        with scratch_database():
            agent = Agent.objects.create(
                name="Bench agent", instructions="You are a support assistant.",
                tools=["lookup_order", "handoff_to_human"], provider_base_url=BENCH_URL,
                provider_api_key_env=KEY_ENV, model="gpt-4.1-mini", is_default=True,
            )
            turns = asyncio.run(self._turns(agent, options["turns"]))
            timings, selection = self._selection(agent, options["messages"], options["selections"])
        overhead = [t.total - t.provider for t in turns]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.stdout.write(
            f"database: {vendor} (query logging {'on' if settings.DEBUG else 'off'}); "
            f"{len(turns)} turns after warm-up, one at a time; {os.cpu_count()} CPUs, load average {load}"
        )
        self.stdout.write(
            "platform overhead per turn (model time excluded): "
            f"p50 {statistics.median(overhead):.2f} ms, p99 {percentile(overhead, 0.99):.2f} ms"
        )
        for label, values in (
            ("  of which posting the message", [t.post for t in turns]),
            ("provider call (SDK + zero-latency provider)", [t.provider for t in turns]),
            ("end to end, post to turn.completed event", [t.total for t in turns]),
        ):
            self.stdout.write(
                f"{label}: p50 {statistics.median(values):.2f} ms, p99 {percentile(values, 0.99):.2f} ms"
            )
        self.stdout.write(
            f"history selection at {options['messages']:,} messages ({len(timings)} runs, budget "
            f"{selection.budget}): p50 {statistics.median(timings):.2f} ms, p99 {percentile(timings, 0.99):.2f} ms; "
            f"selected {len(selection.items)} items, {selection.tokens} tokens "
            f"(read {selection.considered} rows)"
        )

    async def _turns(self, agent: Agent, count: int) -> list[_Timing]:
        engine.bind()
        layer = get_channel_layer()
        recorded: asyncio.Queue[tuple[str, float]] = asyncio.Queue()  # the runner reports on this loop
        stop_observing = observe_turns(lambda p: recorded.put_nowait((p.turn_id, p.provider_seconds)))
        warmup = 20
        timings: list[_Timing] = []
        conversation = None
        channel = ""
        rng = random.Random(7)
        try:
            for index in range(warmup + count):
                if index % 10 == 0:  # a fresh conversation every ten turns: realistic history sizes
                    conversation = await engine.db(conversation_create, agent=agent, channel="api")
                    channel = await layer.new_channel()
                    await layer.group_add(group_name(conversation.pk), channel)
                started = time.perf_counter()
                posted = await engine.db(message_post, conversation=conversation, text=sentence(rng, 6, 20))
                post_time = time.perf_counter() - started
                assert posted.turn is not None  # a customer message always queues a turn here
                turn_id = str(posted.turn.id)
                while True:
                    event = (await layer.receive(channel))["event"]
                    if event.get("turn") == turn_id and event["type"] in ("turn.completed", "turn.failed"):
                        break
                elapsed = time.perf_counter() - started
                if event["type"] == "turn.failed":
                    raise RuntimeError(f"bench turn failed: {event['error']}")
                recorded_turn, provider_seconds = await recorded.get()
                assert recorded_turn == turn_id, "turns run one at a time here"
                if index >= warmup:
                    timings.append(_Timing(elapsed * 1000, post_time * 1000, provider_seconds * 1000))
            await engine.wait_idle()
        finally:
            stop_observing()
        return timings

    def _selection(self, agent: Agent, count: int, runs: int) -> tuple[list[float], Any]:
        conversation = conversation_create(agent=agent, channel="imported")
        rng = random.Random(11)
        items: list[dict[str, Any]] = []
        call = 0
        while len(items) < count - 1:
            items.append({"kind": MessageKind.USER, "text": sentence(rng, 8, 30)})
            if rng.random() < 0.15:
                call += 1
                call_id = f"call_{call}"
                items.append({"kind": MessageKind.FUNCTION_CALL, "tool_name": "lookup_order", "call_id": call_id,
                              "tool_arguments": json.dumps({"order_number": str(1000 + call), "email": None})})
                items.append({"kind": MessageKind.FUNCTION_OUTPUT, "tool_name": "lookup_order", "call_id": call_id,
                              "text": json.dumps({"order_number": str(1000 + call), "status": rng.choice(WORDS)})})
            items.append({"kind": MessageKind.ASSISTANT, "text": sentence(rng, 15, 60)})
        items = items[: count - 1]
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
