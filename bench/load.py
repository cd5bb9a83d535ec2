"""The load generator of the scale benchmark, the same for every mode.

N conversations, each a customer who posts a message, waits for the answer (the
`turn.completed` event), thinks for `think` seconds, and posts again. Every event is
received through the channel layer, as a websocket consumer would receive it. The
fake provider stamps its deltas (bench/fake_llm.py), so for each turn we know:

- platform overhead = (provider got the request - we posted) + (turn.completed reached
  us - provider sent the last delta): everything the platform adds around the model;
- delta delivery = a text.delta reached us - the provider sent it.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from conversations.agent.events import group_name

STAMP = re.compile(r"([rw])\d*@(\d+\.\d+)")
Poster = Callable[[int, str, str], Awaitable[str]]  # (conversation index, id, text) -> turn id


@dataclass
class TurnRecord:
    posted_at: float
    turn_id: str | None = None
    done_at: float | None = None
    status: str = "pending"
    error: str = ""
    provider_received: float | None = None
    provider_last: float | None = None
    first_delta_at: float | None = None
    deltas: int = 0

    @property
    def before_model(self) -> float | None:
        return None if self.provider_received is None else self.provider_received - self.posted_at

    @property
    def after_model(self) -> float | None:
        if self.done_at is None or self.provider_last is None:
            return None
        return self.done_at - self.provider_last

    @property
    def overhead(self) -> float | None:
        if self.done_at is None or self.provider_received is None or self.provider_last is None:
            return None
        return (self.provider_received - self.posted_at) + (self.done_at - self.provider_last)


@dataclass
class Results:
    records: list[TurnRecord] = field(default_factory=list)
    delta_delays: list[float] = field(default_factory=list)
    post_errors: list[str] = field(default_factory=list)
    receive_errors: list[str] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    lag_max: float = 0.0


class _Conversation:
    def __init__(self, index: int, conversation_id: str) -> None:
        self.index = index
        self.id = conversation_id
        self.current: TurnRecord | None = None
        self.done: asyncio.Event = asyncio.Event()


class Load:
    def __init__(self, *, conversation_ids: list[str], poster: Poster, layer: Any, think: float,
                 duration: float, turn_timeout: float = 90.0, per_channel: int = 100) -> None:
        self.conversations = {cid: _Conversation(i, cid) for i, cid in enumerate(conversation_ids)}
        self.poster = poster
        self.layer = layer
        self.think = think
        self.duration = duration
        self.turn_timeout = turn_timeout
        self.per_channel = per_channel
        self.results = Results()

    async def _subscribe(self) -> list[str]:
        channels = [await self.layer.new_channel() for _ in range(max(1, -(-len(self.conversations) // self.per_channel)))]
        sem = asyncio.Semaphore(50)

        async def add(i: int, cid: str) -> None:
            async with sem:
                await self.layer.group_add(group_name(cid), channels[i % len(channels)])

        await asyncio.gather(*(add(c.index, c.id) for c in self.conversations.values()))
        return channels

    async def _receive(self, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except Exception as exc:  # counted and reported: a listener must survive
                self.results.receive_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                await asyncio.sleep(0.1)
                continue
            self._on_event(message["event"], time.time())

    def _on_event(self, event: dict[str, Any], now: float) -> None:
        conversation = self.conversations.get(event.get("conversation", ""))
        record = conversation.current if conversation else None
        if record is None or (record.turn_id and event.get("turn") not in (None, record.turn_id)):
            return
        kind = event["type"]
        if kind == "text.delta":
            record.deltas += 1
            record.first_delta_at = record.first_delta_at or now
            for _tag, stamp in STAMP.findall(event["delta"]):
                if _tag == "w":
                    self.results.delta_delays.append(now - float(stamp))
        elif kind == "message" and event["message"]["kind"] == "assistant":
            stamps = STAMP.findall(event["message"]["text"])
            received = [float(s) for tag, s in stamps if tag == "r"]
            sent = [float(s) for tag, s in stamps if tag == "w"]
            if received and sent:
                record.provider_received, record.provider_last = received[0], sent[-1]
        elif kind in ("turn.completed", "turn.failed"):
            record.done_at = now
            record.status = "completed" if kind == "turn.completed" else "failed"
            record.error = event.get("error_code", "") or ""
            conversation.done.set()

    async def _customer(self, conversation: _Conversation, start: float, stop: float) -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        n = 0
        while time.time() < stop:
            n += 1
            record = TurnRecord(posted_at=time.time())
            conversation.current = record
            conversation.done.clear()
            self.results.records.append(record)
            try:
                record.turn_id = await self.poster(conversation.index, conversation.id, f"Question {n}: where is my order?")
            except Exception as exc:
                record.status, record.error = "post_error", f"{type(exc).__name__}: {exc}"[:200]
                self.results.post_errors.append(record.error)
                await asyncio.sleep(self.think)
                continue
            try:
                await asyncio.wait_for(conversation.done.wait(), self.turn_timeout)
            except TimeoutError:
                record.status = "timeout"
            await asyncio.sleep(random.uniform(0.5, 1.5) * self.think)

    async def _watch_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            self.results.lag_max = max(self.results.lag_max, time.monotonic() - before - 0.1)

    async def run(self) -> Results:
        channels = await self._subscribe()
        receivers = [asyncio.create_task(self._receive(ch)) for ch in channels]
        watcher = asyncio.create_task(self._watch_lag())
        begin = time.time()
        ramp_end = begin + self.think  # every customer has posted once by then
        stop = ramp_end + self.duration
        self.results.window = (ramp_end, stop)
        await asyncio.gather(*(
            self._customer(c, begin + random.uniform(0, self.think), stop) for c in self.conversations.values()
        ))
        for task in [*receivers, watcher]:
            task.cancel()
        await asyncio.gather(*receivers, watcher, return_exceptions=True)
        return self.results


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summarize(results: Results, conversations: int) -> dict[str, Any]:
    start, stop = results.window
    records = results.records
    in_window = [r for r in records if r.done_at and start <= r.done_at <= stop and r.status == "completed"]
    overheads = [r.overhead for r in records if r.status == "completed" and r.overhead is not None]
    statuses: dict[str, int] = {}
    for record in records:
        statuses[record.status] = statuses.get(record.status, 0) + 1

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "conversations": conversations,
        "turns_posted": len(records),
        "statuses": statuses,
        "errors": sum(n for s, n in statuses.items() if s != "completed"),
        "turns_per_s": round(len(in_window) / max(1e-9, stop - start), 2),
        "overhead_p50_ms": ms(percentile(overheads, 50)),
        "overhead_p99_ms": ms(percentile(overheads, 99)),
        "before_model_p50_ms": ms(percentile([r.before_model for r in records if r.status == "completed" and r.overhead is not None], 50)),
        "after_model_p50_ms": ms(percentile([r.after_model for r in records if r.status == "completed" and r.overhead is not None], 50)),
        "delta_p50_ms": ms(percentile(results.delta_delays, 50)),
        "delta_p99_ms": ms(percentile(results.delta_delays, 99)),
        "deltas_received": len(results.delta_delays),
        "turns_without_stamps": sum(1 for r in records if r.status == "completed" and r.overhead is None),
        "bench_loop_lag_max_ms": ms(results.lag_max),
        "post_errors": sorted(set(results.post_errors))[:5],
        "receive_errors": len(results.receive_errors),
    }
