"""Load benchmark for the widget door: many concurrent widget conversations on one daphne.

    .venv/bin/python bench/widget_load.py --clients 1000 --turns 3 --think 20

What runs: a fake Responses provider in its own process (waits `--delay` seconds, then
streams `--deltas` text deltas `--spacing` seconds apart, each delta carrying the time
it was written), one daphne process with the project's real stack (SQLite, in-memory
channel layer, the engine, the official SDK over HTTP to the fake provider), and
`--clients` websocket clients in this process (the `websockets` package). Each client
starts a widget session over HTTP, connects, and holds a conversation: `--turns`
messages, each after a random think time around `--think` seconds.

What it prints: completed turns, errors, lost or duplicated messages (at the end each
client reconnects with after=0 and the stored items must equal, one for one and in seq
order, what it received live; each answer must equal its streamed deltas),
delta delivery overhead (provider write -> client receive, which includes the engine's
delta coalescing of SUPPORT_DELTA_FLUSH_SECONDS) p50/p90/p99/max, turn latency, the
server's memory per idle connection and its CPU use, and the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import connect

from conversations.agent import wire
from tests.widget.server import DaphneServer, free_port

TOKEN = re.compile(r"w\d+@(\d+\.\d+) ")


# --- the fake provider (its own process) -------------------------------------------------


class StampedWords:
    """Delta texts made when they are sent, each carrying its write time; iterating
    again (for the final text) replays them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.made: list[str] = []

    def __iter__(self):
        if len(self.made) >= self.count:
            yield from self.made
            return
        for index in range(self.count):
            word = f"w{index}@{time.time():.6f} "
            self.made.append(word)
            yield word


async def _serve_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args: Any) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = json.loads(await reader.readexactly(length) or b"{}")
        await asyncio.sleep(args.delay)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n")
        events = wire.EventWriter(body)
        for event in events.created():
            writer.write(wire.sse(event))
        for event in events.message(StampedWords(args.deltas)):
            writer.write(wire.sse(event))
            await writer.drain()
            if event["type"] == "response.output_text.delta":
                await asyncio.sleep(args.spacing)
        writer.write(wire.sse(events.completed(wire.usage(100, args.deltas))))
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def run_provider(port: int, args: Any) -> None:
    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_response(r, w, args), "127.0.0.1", port, backlog=4096
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Stats:
    overhead_ms: list[float] = field(default_factory=list)
    overhead_at: list[float] = field(default_factory=list)  # receive time of each sample
    turn_ms: list[float] = field(default_factory=list)
    turns: int = 0
    frames: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    reconnects: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def post_session(port: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b"{}"
    writer.write(
        b"POST /widget/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body
    )
    raw = await reader.read()
    writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    if b" 201 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"session failed: {head[:80]!r}")
    return json.loads(payload)


# --- one widget conversation -------------------------------------------------------------------


class Client:
    def __init__(self, index: int, port: int, session: dict[str, Any], stats: Stats, args: Any) -> None:
        self.index = index
        self.port = port
        self.session = session
        self.stats = stats
        self.args = args
        self.seen: list[tuple[int, str, str]] = []  # (seq, kind, text) as delivered live
        self.ws: Any = None

    async def connect(self) -> list[tuple[int, str, str]]:
        """Open the socket; returns the stored items the catch-up delivered."""
        url = f"ws://127.0.0.1:{self.port}{self.session['websocket_path']}?token={self.session['token']}&after=0"
        self.ws = await connect(url, origin=f"http://127.0.0.1:{self.port}", ping_interval=None,
                                max_queue=None, open_timeout=120, close_timeout=5)
        stored = []
        while (event := await self._next())["type"] != "caught_up":
            if event["type"] == "message":
                message = event["message"]
                stored.append((event["seq"], message["kind"], message["text"]))
        return stored

    async def _next(self) -> dict[str, Any]:
        event = json.loads(await self.ws.recv())
        self.stats.frames += 1
        return event

    async def converse(self, start: asyncio.Event) -> None:
        await start.wait()
        await asyncio.sleep(random.uniform(0, self.args.think * 2))
        try:
            for turn in range(self.args.turns):
                if turn:
                    await asyncio.sleep(random.uniform(self.args.think * 0.5, self.args.think * 1.5))
                await asyncio.wait_for(self._turn(turn), timeout=self.args.turn_timeout)
        except TimeoutError:
            self.stats.error("turn timeout")
        except Exception as exc:  # a closed socket or a protocol surprise is an error to report
            self.stats.error(type(exc).__name__)
        finally:
            await self.ws.close()

    async def verify(self) -> None:
        """The database is the truth: a fresh catch-up must match what arrived live,
        item for item (nothing lost, nothing duplicated, same order)."""
        for attempt in range(4):  # a verification, not load: reconnect like the widget does
            try:
                stored = await asyncio.wait_for(self.connect(), timeout=self.args.turn_timeout)
                await self.ws.close()
                break
            except Exception as exc:
                if attempt == 3:
                    self.stats.error(f"final catch-up {type(exc).__name__}")
                    return
                self.stats.reconnects += 1
                await asyncio.sleep(0.5 * 2**attempt)
        if stored != self.seen or [seq for seq, _, _ in stored] != list(range(1, len(stored) + 1)):
            self.stats.lost += 1

    async def _turn(self, turn: int) -> None:
        sent = time.time()
        await self.ws.send(json.dumps({"type": "message", "text": f"Bench message {turn} from {self.index}",
                                       "client_id": f"b{self.index}-{turn}"}))
        streamed: list[str] = []
        answer = None
        while True:
            event = await self._next()
            kind = event["type"]
            if kind == "text.delta":
                received = time.time()
                streamed.append(event["delta"])
                for stamp in TOKEN.findall(event["delta"]):
                    self.stats.overhead_ms.append((received - float(stamp)) * 1000)
                    self.stats.overhead_at.append(received)
            elif kind == "message":
                message = event["message"]
                self.seen.append((event["seq"], message["kind"], message["text"]))
                if message["kind"] == "assistant":
                    answer = message["text"]
            elif kind == "turn.completed":
                break
            elif kind in ("turn.failed", "turn.cancelled", "error"):
                self.stats.error(f"{kind} {event.get('error_code') or event.get('code') or ''}".strip())
                return
        if answer is None or answer != "".join(streamed) or len(TOKEN.findall(answer)) != self.args.deltas:
            self.stats.error("answer differs from its deltas")
            return
        self.stats.turns += 1
        self.stats.turn_ms.append((time.time() - sent) * 1000)


# --- the run -----------------------------------------------------------------------------------


async def gather_limited(coros: list[Any], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def run(coro: Any) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def drive(server: DaphneServer, provider_pid: int, args: Any) -> dict[str, Any]:
    pid = server.pid()
    stats = Stats()
    warm = Client(-1, server.port, await post_session(server.port), Stats(), argparse.Namespace(**{**vars(args), "turns": 1}))
    await warm.connect()
    await warm._turn(0)  # loads every code path once, so the baseline includes it
    await warm.ws.close()
    await asyncio.sleep(1.0)
    base_rss = rss_kb(pid)

    began = time.monotonic()
    sessions = await gather_limited([post_session(server.port) for _ in range(args.clients)], 50)
    clients = [Client(i, server.port, s, stats, args) for i, s in enumerate(sessions)]
    await gather_limited([c.connect() for c in clients], 100)
    connect_s = time.monotonic() - began
    await asyncio.sleep(2.0)
    connected_rss = rss_kb(pid)

    start = asyncio.Event()
    peak = [connected_rss]
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    others_before = cpu_seconds(provider_pid) + cpu_seconds(os.getpid())

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_kb(pid))
            await asyncio.sleep(0.5)

    loads: list[tuple[float, float]] = []

    async def sample_load() -> None:
        while True:
            loads.append((time.time(), os.getloadavg()[0]))
            await asyncio.sleep(5.0)

    sampler = asyncio.create_task(sample())
    load_sampler = asyncio.create_task(sample_load())
    tasks = [asyncio.create_task(c.converse(start)) for c in clients]
    start.set()
    await asyncio.gather(*tasks)
    sampler.cancel()
    load_sampler.cancel()
    wall = time.monotonic() - wall_before
    cpu = cpu_seconds(pid) - cpu_before
    others = cpu_seconds(provider_pid) + cpu_seconds(os.getpid()) - others_before
    await gather_limited([c.verify() for c in clients], 50)  # after the measured run
    return {
        "stats": stats, "base_rss": base_rss, "connected_rss": connected_rss, "peak_rss": peak[0],
        "connect_s": connect_s, "wall": wall, "cpu": cpu, "others_cpu": others, "loads": loads,
    }


def report(args: Any, result: dict[str, Any], load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    stats: Stats = result["stats"]
    expected = args.clients * args.turns
    per_conn = (result["connected_rss"] - result["base_rss"]) / max(1, args.clients)
    lines = [
        f"widget load: {args.clients} concurrent conversations x {args.turns} turns, think ~{args.think}s, "
        f"provider waits {args.delay}s then {args.deltas} deltas {int(args.spacing * 1000)}ms apart, "
        f"delta coalescing {args.flush * 1000:.0f}ms",
        f"machine: {os.cpu_count()} cores, load average before {load_before[0]:.2f} / after {load_after[0]:.2f}",
        f"connected {args.clients} websockets in {result['connect_s']:.1f}s (sessions over HTTP, then connect + catch-up)",
        f"turns completed: {stats.turns}/{expected} in {result['wall']:.1f}s ({stats.turns / max(result['wall'], 1e-9):.1f} turns/s)",
        f"errors: {sum(stats.errors.values())} {json.dumps(stats.errors) if stats.errors else ''}".rstrip(),
        f"conversations with lost/duplicated/out-of-order messages: {stats.lost} "
        f"(verified by a fresh catch-up; {stats.reconnects} verification reconnects retried)",
        f"delta delivery overhead (provider write -> client receive), {len(stats.overhead_ms)} deltas: "
        f"p50 {pct(stats.overhead_ms, 50):.1f} ms, p90 {pct(stats.overhead_ms, 90):.1f} ms, "
        f"p99 {pct(stats.overhead_ms, 99):.1f} ms, max {max(stats.overhead_ms, default=float('nan')):.1f} ms",
        f"turn latency (send -> turn.completed; provider alone takes {args.delay + args.deltas * args.spacing:.1f}s): "
        f"p50 {pct(stats.turn_ms, 50) / 1000:.2f}s, p99 {pct(stats.turn_ms, 99) / 1000:.2f}s",
        f"websocket frames received: {stats.frames}",
        f"server memory: baseline {result['base_rss'] / 1024:.0f} MiB, with {args.clients} idle connections "
        f"{result['connected_rss'] / 1024:.0f} MiB ({per_conn:.0f} KiB per connection), peak {result['peak_rss'] / 1024:.0f} MiB",
        f"server CPU during the run: {result['cpu']:.1f}s over {result['wall']:.1f}s ({100 * result['cpu'] / max(result['wall'], 1e-9):.0f}% of one core); "
        f"fake provider + these clients: {result['others_cpu']:.1f}s",
    ]
    if stats.turn_ms:
        lines.append(f"mean turn latency {statistics.mean(stats.turn_ms) / 1000:.2f}s")
    lines.append("per 10 s window: deltas, overhead p50/p99 ms, machine load average (1 min)")
    windows: dict[int, list[float]] = {}
    for at, value in zip(stats.overhead_at, stats.overhead_ms, strict=True):
        windows.setdefault(int(at // 10), []).append(value)
    loads = result["loads"]
    for key in sorted(windows):
        near = [load for at, load in loads if key * 10 - 5 <= at < key * 10 + 15]
        load = f"{max(near):.1f}" if near else "?"
        values = windows[key]
        lines.append(f"  {len(values):6d} {pct(values, 50):8.1f} {pct(values, 99):8.1f}   load {load}")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--think", type=float, default=20.0, help="mean seconds between a client's messages")
    parser.add_argument("--delay", type=float, default=1.0, help="provider wait before streaming")
    parser.add_argument("--deltas", type=int, default=50)
    parser.add_argument("--spacing", type=float, default=0.02, help="seconds between deltas")
    parser.add_argument("--flush", type=float, default=0.03, help="engine delta coalescing interval (s)")
    parser.add_argument("--db-threads", type=int, default=None, help="SUPPORT_DB_THREADS for the server")
    parser.add_argument("--turn-timeout", type=float, default=180.0)
    args = parser.parse_args()

    provider_port = free_port()
    provider = multiprocessing.Process(target=run_provider, args=(provider_port, args), daemon=True)
    provider.start()
    with tempfile.TemporaryDirectory(prefix="widget-load-") as var_dir:
        server = DaphneServer(Path(var_dir), env={
            "OPENAI_API_KEY": "bench-key",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{provider_port}/v1",
            "OPENAI_MAX_RETRIES": "0",
            "OPENAI_TIMEOUT_SECONDS": "120",
            "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini",
            "SUPPORT_DELTA_FLUSH_SECONDS": str(args.flush),
            "SUPPORT_WIDGET_SESSION_RATE": "",  # the benchmark opens every conversation from one address
            "SUPPORT_WS_MAX_PER_ADDRESS": "0",
            "LOG_LEVEL": "WARNING",
            **({"SUPPORT_DB_THREADS": str(args.db_threads)} if args.db_threads else {}),
        })
        server.manage("migrate", "--noinput", "-v0")
        server.manage("setup_demo")
        server.start()
        load_before = os.getloadavg()
        try:
            result = asyncio.run(drive(server, provider.pid, args))
        finally:
            load_after = os.getloadavg()
            server.stop()
            provider.terminate()
        report(args, result, load_before, load_after)
        log = server.log_path.read_text().splitlines()
        errors = [i for i, line in enumerate(log) if "ERROR" in line or "Traceback" in line]
        if errors:
            print(f"server log: {len(errors)} error lines; the first:")
            print("\n".join(log[max(0, errors[0] - 2):errors[0] + 25]))


if __name__ == "__main__":
    main()
