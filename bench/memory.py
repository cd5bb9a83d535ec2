"""Memory per process and per open widget socket, on the real server.

    .venv/bin/python bench/memory.py                      # embedded: SQLite, in-memory layer
    .venv/bin/python bench/memory.py --sockets 100 1000
    .venv/bin/python bench/memory.py --scale              # PostgreSQL + Redis from the env

What runs: `python -m support.serve` (the Makefile's `run` and the Procfile's `web`) on a
free port with a scratch database, the offline model answering (no provider key), and
the websocket clients in this process (the `websockets` package, as bench/widget_load.py).
`--scale` uses DATABASE_URL and REDIS_URL (defaults: the Makefile's test-scale servers)
with a scratch PostgreSQL database and Redis prefix of its own, dropped afterwards.

What it prints, for the server process: RSS, PSS and USS (from /proc/<pid>/smaps_rollup;
USS is its private memory, what a second process would add) and RSS split into anonymous
and file-backed pages (RssAnon / RssFile of /proc/<pid>/status; the model's weights are a
read-only file mapping, so they count as file pages, shared by every process on the
machine that maps them and reclaimable by the kernel), at each stage: idle after
start-up (one /healthz request answered), after one answered widget turn, after N widget
sessions were started over HTTP, and with those N sockets open and idle (each connected
and caught up), for each N of `--sockets`. The cost per socket is the growth from opening
the sockets divided by N (what the sessions' requests and rows leave behind is the row
before, not counted). The server's heap trims are off unless `--trim` (a trim between two
readings blurs the per-socket figure). Then the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.asyncio.client import connect

from bench.widget_load import gather_limited, post_session
from tests.widget.server import DaphneServer

SCALE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test"
SCALE_REDIS_URL = "redis://127.0.0.1:6379/0"


def memory_kb(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) of a process, and its RSS split into
    anonymous (heap, stacks: private to the process) and file-backed pages (code,
    shared libraries, mapped model weights: shared between processes mapping the same
    file, and the kernel can drop them under pressure), in KiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        fields[name] = int(rest.split()[0])
    status: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            status[name] = int(rest.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "uss": fields["Private_Clean"] + fields["Private_Dirty"],
            "anon": status["RssAnon"], "file": status["RssFile"]}


class Server(DaphneServer):
    """The test suite's daphne subprocess, launched as production launches it."""

    def __init__(self, var_dir: Path, env: dict[str, str]) -> None:
        super().__init__(var_dir, env=env)
        self.env.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL")})
        self.command = [sys.executable, "-m", "support.serve"]


async def until_event(ws: Any, kind: str) -> dict[str, Any]:
    """Read a socket's events until one of type `kind`, and return it."""
    event = json.loads(await ws.recv())
    while event["type"] != kind:
        event = json.loads(await ws.recv())
    return event


async def one_turn(port: int) -> Any:
    session = await post_session(port)
    url = f"ws://127.0.0.1:{port}{session['websocket_path']}?token={session['token']}&after=0"
    async with connect(url, origin=f"http://127.0.0.1:{port}", ping_interval=None, open_timeout=60) as ws:
        await until_event(ws, "caught_up")
        await ws.send(json.dumps({"type": "message", "text": "How do I reset my password?", "client_id": "m1"}))
        answer = None
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=120))
            if event["type"] == "message" and event["message"]["kind"] == "assistant":
                answer = event["message"]["text"]
            elif event["type"] == "turn.completed":
                break
            elif event["type"] in ("turn.failed", "turn.cancelled", "error"):
                raise RuntimeError(f"the turn did not complete: {event}")
    if not answer:
        raise RuntimeError("the turn completed without an answer")
    return answer


async def new_sessions(port: int, count: int) -> list[dict[str, Any]]:
    return await gather_limited([post_session(port) for _ in range(count)], 50)


async def open_sockets(port: int, sessions: list[dict[str, Any]]) -> list[Any]:
    async def open_one(session: dict[str, Any]) -> Any:
        url = f"ws://127.0.0.1:{port}{session['websocket_path']}?token={session['token']}&after=0"
        ws = await connect(url, origin=f"http://127.0.0.1:{port}", ping_interval=None, open_timeout=120)
        await until_event(ws, "caught_up")
        return ws

    return await gather_limited([open_one(s) for s in sessions], 100)


def settle(seconds: float = 2.0) -> None:
    time.sleep(seconds)


def row(label: str, mem: dict[str, int], extra: str = "") -> str:
    return (f"  {label:<28} RSS {mem['rss'] / 1024:7.1f} MB (anon {mem['anon'] / 1024:6.1f}, "
            f"file {mem['file'] / 1024:5.1f})   PSS {mem['pss'] / 1024:7.1f} MB   "
            f"USS {mem['uss'] / 1024:7.1f} MB{extra}")


async def drive(server: Server, pid: int, args: Any) -> list[str]:
    lines = []
    idle = memory_kb(pid)
    lines.append(row("idle after start-up", idle))
    answer = await one_turn(server.port)
    settle()
    after_turn = memory_kb(pid)
    lines.append(row("after one answered turn", after_turn, f"   (answer: {answer[:40]!r}...)"))
    for count in args.sockets:
        sessions = await new_sessions(server.port, count)
        settle()
        before = memory_kb(pid)
        lines.append(row(f"+{count} sessions (HTTP)", before))
        sockets = await open_sockets(server.port, sessions)
        settle()
        held = memory_kb(pid)
        per = {k: (held[k] - before[k]) / count for k in held}
        lines.append(row(f"{count} open sockets", held,
                         f"   per socket: RSS {per['rss']:.1f} KB, USS {per['uss']:.1f} KB"))
        await asyncio.gather(*(ws.close() for ws in sockets))
        settle()
    return lines


def scale_env(args: Any, name: str) -> dict[str, str]:
    import psycopg

    url = urllib.parse.urlsplit(args.database_url)
    with psycopg.connect(args.database_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    return {"DATABASE_URL": urllib.parse.urlunsplit(url._replace(path="/" + name)),
            "REDIS_URL": args.redis_url, "SUPPORT_REDIS_PREFIX": f"support-{name}"}


def drop_scale(args: Any, name: str) -> None:
    import psycopg

    with psycopg.connect(args.database_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--trim", action="store_true", help="SUPPORT_MALLOC_TRIM_SECONDS=1 (per-socket figures then mean little)")
    parser.add_argument("--scale", action="store_true", help="PostgreSQL + Redis (DATABASE_URL, REDIS_URL)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or SCALE_DATABASE_URL)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or SCALE_REDIS_URL)
    args = parser.parse_args()

    scale_name = f"bench_memory_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as var_dir:
        env = {
            "SUPPORT_WIDGET_SESSION_RATE": "",  # every session comes from one address
            "SUPPORT_WS_MAX_PER_ADDRESS": "0",
            "LOG_LEVEL": "WARNING",
            # No trims by default: a trim between two readings would make the cost per
            # socket meaningless (even negative). --trim: every second (60 s in
            # production), to read what a process holds once it has trimmed.
            "SUPPORT_MALLOC_TRIM_SECONDS": "1" if args.trim else "0",
            **(scale_env(args, scale_name) if args.scale else {}),
        }
        server = Server(Path(var_dir), env)
        try:
            server.manage("migrate", "--noinput", "-v0")
            server.manage("setup_demo")
            server.start()  # its readiness probe is one page; then one /healthz
            urllib.request.urlopen(server.base_url + "/healthz", timeout=10).read()
            settle()
            load_before = os.getloadavg()
            lines = asyncio.run(drive(server, server.pid(), args))
            load_after = os.getloadavg()
        finally:
            server.stop()
            if args.scale:
                drop_scale(args, scale_name)
    mode = "scale (PostgreSQL + Redis channel layer)" if args.scale else "embedded (SQLite, in-memory channel layer)"
    trims = "heap trimmed every second" if args.trim else "no heap trims"
    print(f"memory of one `python -m support.serve` process, {mode}, offline model, {trims}")
    print("\n".join(lines))
    print(f"machine: {os.cpu_count()} cores, load average before {load_before[0]:.2f} / after {load_after[0]:.2f}")


if __name__ == "__main__":
    main()
