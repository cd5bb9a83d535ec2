"""Scale benchmark: many concurrent conversations, scale mode against embedded mode.

    .venv/bin/python bench/scale_load.py --conversations 2000 --think 30 --duration 60

Scale mode: a fresh PostgreSQL database, Redis, `--processes` daphne processes started
from the Procfile's web line, messages posted round-robin to them through the REST API
(one integration's API key), every event received through Redis. Embedded mode: SQLite, the in-memory channel layer and the
engine in this benchmark's own process (so the load generator shares its core). Both
use the same fake provider (bench/fake_llm.py: `--latency` seconds per answer in
`--deltas` streamed deltas) and the same load (bench/load.py). Each mode runs in a
child process of its own; the parent prints one table. Nothing is asserted: it prints.

`--modes mixed` (bench/mixed_load.py) is scale mode with the load split over the four
doors (REST poll, REST `?wait=`, SSE, widget sockets) on a PostgreSQL cluster and a
redis-server of its own, with a Redis restart and a 5 s PostgreSQL stop during the
load; it prints errors, lost and duplicated messages, answer latency per door and the
recovery times:

    .venv/bin/python bench/scale_load.py --modes mixed --conversations 2000 --think 120 --duration 90
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support.procfile import BASE_DIR, free_port, process_env, run_once, spawn


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sampler:
    """Peak resident memory and CPU time of some processes while the load runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0.0)
        self.cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    async def run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mb(pid))
            await asyncio.sleep(1.0)

    def report(self) -> dict[str, Any]:
        return {name: {"rss_peak_mb": round(self.peak[name], 1),
                       "cpu_s": round(cpu_seconds(pid) - self.cpu_start[name], 1)}
                for name, pid in self.pids.items()}


def start_fake_llm(latency: float, deltas: int) -> tuple[subprocess.Popen[bytes], str]:
    llm = subprocess.Popen([sys.executable, "-m", "bench.fake_llm", "--latency", str(latency), "--deltas", str(deltas)],
                           cwd=BASE_DIR, stdout=subprocess.PIPE)
    line = llm.stdout.readline().decode()  # type: ignore[union-attr]
    return llm, f"http://127.0.0.1:{line.split()[1]}/v1"


def create_conversations(count: int, *, api_key: bool = False) -> tuple[list[str], str]:
    """`count` conversations, and (with `api_key`) a raw API key of the integration that
    owns them, for posting through the REST API."""
    from conversations.api.keys import api_key_create
    from conversations.api.models import ApiClient, Scope
    from conversations.api.services import api_conversation_create
    from conversations.services.conversations import conversation_create

    if not api_key:
        return [str(conversation_create(channel="api", customer_email="ada@example.com").id)
                for _ in range(count)], ""
    key, raw = api_key_create(client=ApiClient.objects.create(name="bench"), name="bench",
                              scopes=[Scope.READ, Scope.WRITE])
    return [str(api_conversation_create(key=key, channel="api", customer_email="ada@example.com").id)
            for _ in range(count)], raw


def verify(conversation_ids: list[str]) -> dict[str, Any]:
    """What the database holds: every customer message answered exactly once?"""
    from django.db.models import Count, Q

    from bench.load import percentile
    from conversations.models import Message, Turn

    turns = Turn.objects.filter(conversation_id__in=conversation_ids, started_at__isnull=False)
    waits = [(t.started_at - t.created_at).total_seconds() for t in turns.only("created_at", "started_at")]
    runs = [(t.finished_at - t.started_at).total_seconds()
            for t in turns.filter(finished_at__isnull=False).only("started_at", "finished_at")]
    users = Message.objects.filter(conversation_id__in=conversation_ids, kind="user")
    answered = users.annotate(n=Count("turns", filter=Q(turns__status="completed"))).values_list("n", flat=True)
    counts = list(answered)
    return {
        "user_messages": len(counts),
        "answered_once": sum(1 for n in counts if n == 1),
        "unanswered": sum(1 for n in counts if n == 0),
        "answered_twice_or_more": sum(1 for n in counts if n > 1),
        "assistant_messages": Message.objects.filter(conversation_id__in=conversation_ids, kind="assistant").count(),
        "failed_turns": Turn.objects.filter(conversation_id__in=conversation_ids, status="failed").count(),
        "queued_to_claimed_p50_p99_s": [round(percentile(waits, q) or 0, 3) for q in (50, 99)],
        "claimed_to_finished_p50_p99_s": [round(percentile(runs, q) or 0, 3) for q in (50, 99)],
        "runner_ttft_p50_p99_ms": [percentile([t for t in turns.values_list("time_to_first_token_ms", flat=True) if t], q)
                                   for q in (50, 99)],
        "runner_latency_p50_p99_ms": [percentile([t for t in turns.values_list("latency_ms", flat=True) if t], q)
                                      for q in (50, 99)],
    }


# --- scale mode -------------------------------------------------------------------------
def child_scale(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    base = urlsplit(args.database_url)
    name = f"support_bench_{os.getpid()}"
    admin = dict(host=base.hostname, port=base.port or 5432, user=base.username or "postgres",
                 password=base.password, dbname=base.path.lstrip("/") or "postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = urlunsplit((base.scheme, base.netloc, f"/{name}", "", ""))
    llm, provider_url = start_fake_llm(args.latency, args.deltas)
    var_dir = tempfile.mkdtemp(prefix="bench-var-")
    common = {
        "DATABASE_URL": database_url, "REDIS_URL": args.redis_url, "SUPPORT_REDIS_PREFIX": f"bench{os.getpid()}",
        "SUPPORT_CHANNEL_LAYER": args.layer,
        "SUPPORT_SKIP_DOTENV": "1", "SUPPORT_VAR_DIR": var_dir, "DJANGO_SECRET_KEY": "bench-" + os.urandom(16).hex(),
        "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": provider_url, "OPENAI_TIMEOUT_SECONDS": "60",
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini", "DJANGO_DEBUG": "false", "DJANGO_HTTPS": "false", "SUPPORT_WS_MAX_PER_ADDRESS": "0", "LOG_LEVEL": "WARNING",
    }
    # This process only creates conversations and listens: it never runs or sweeps turns.
    os.environ.update({**common, "SUPPORT_SWEEP_INTERVAL_SECONDS": "0", "DATABASE_POOL_MAX_SIZE": "4"})
    webs: list[subprocess.Popen[bytes]] = []
    try:
        # The platform's own application; API rate limits off (the load is one key).
        web_env = process_env({**common, "DATABASE_POOL_MAX_SIZE": str(args.pool), "SUPPORT_API_RATE_KEY": ""})
        run_once("release", env=web_env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("setup_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        ports = []
        for index in range(args.processes):
            ports.append(free_port())
            log = open(Path(var_dir) / f"web{index}.log", "wb")  # noqa: SIM115
            webs.append(spawn("web", env={**web_env, "PORT": str(ports[-1])}, stdout=log))
        wait_ready(ports, webs)
        conversation_ids, api_key = create_conversations(args.conversations, api_key=True)
        summary = asyncio.run(drive_scale(args, conversation_ids, api_key, ports,
                                          {f"web{i}": w.pid for i, w in enumerate(webs)}))
        summary["database"] = verify(conversation_ids)
        summary["logs"] = {f"web{i}": tail(Path(var_dir) / f"web{i}.log") for i in range(len(webs))}
        return summary
    finally:
        for web in webs:
            web.send_signal(signal.SIGTERM)
        for web in webs:
            try:
                web.wait(timeout=15)
            except subprocess.TimeoutExpired:
                web.kill()
        llm.kill()
        from django.db import connections

        connections.close_all()
        if hasattr(connections["default"], "close_pool"):
            connections["default"].close_pool()
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tail(path: Path, lines: int = 5) -> str:
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(line for line in text if "WARNING" in line or "ERROR" in line or "Traceback" in line)[-2000:] or "\n".join(text[-lines:])


def wait_ready(ports: list[int], webs: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    for port, web in zip(ports, webs, strict=True):
        while True:
            if web.poll() is not None:
                raise RuntimeError(f"web on {port} exited")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"web on {port} not ready")
            time.sleep(0.2)


async def drive_scale(args: argparse.Namespace, conversation_ids: list[str], api_key: str, ports: list[int],
                      pids: dict[str, int]) -> dict[str, Any]:
    import httpx
    from channels.layers import get_channel_layer

    from bench.load import Load, summarize

    limits = httpx.Limits(max_connections=args.http_connections, max_keepalive_connections=args.http_connections)
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", limits=limits, timeout=60,
                                 headers={"Authorization": f"Bearer {api_key}"}) for p in ports]

    async def post(index: int, conversation_id: str, text: str) -> str:
        # Through the REST API, as an integration posts (the widget's socket calls the
        # same service).
        response = await clients[index % len(clients)].post(
            f"/api/v1/conversations/{conversation_id}/messages", json={"text": text})
        if response.status_code != 201:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:150]}")
        return response.json()["turn"]["id"]

    sampler = Sampler({**pids, "bench": os.getpid()})
    sampling = asyncio.create_task(sampler.run())
    load = Load(conversation_ids=conversation_ids, poster=post, layer=get_channel_layer(),
                think=args.think, duration=args.duration)
    results = await load.run()
    sampling.cancel()
    for client in clients:
        await client.aclose()
    return {**summarize(results, len(conversation_ids)), "processes": sampler.report()}


# --- embedded mode ----------------------------------------------------------------------
def child_embedded(args: argparse.Namespace) -> dict[str, Any]:
    llm, provider_url = start_fake_llm(args.latency, args.deltas)
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update({
        "SUPPORT_SKIP_DOTENV": "1", "SUPPORT_VAR_DIR": tempfile.mkdtemp(prefix="bench-embedded-"),
        "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": provider_url, "OPENAI_TIMEOUT_SECONDS": "60",
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini", "DJANGO_DEBUG": "false", "DJANGO_HTTPS": "false", "SUPPORT_WS_MAX_PER_ADDRESS": "0", "LOG_LEVEL": "WARNING",
    })
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        call_command("setup_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        conversation_ids, _ = create_conversations(args.conversations)
        summary = asyncio.run(drive_embedded(args, conversation_ids))
        summary["database"] = verify(conversation_ids)
        return summary
    finally:
        llm.kill()


async def drive_embedded(args: argparse.Namespace, conversation_ids: list[str]) -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from channels.layers import get_channel_layer
    from django.db import close_old_connections

    from bench.load import Load, summarize
    from conversations.agent.engine import engine
    from conversations.models import Conversation
    from conversations.services.messages import message_post

    engine.bind()  # turns run on this loop, as they run on daphne's loop in a server

    def post_message(conversation_id: str, text: str) -> str:
        # What the API's create view does, without HTTP (this process is the server).
        close_old_connections()
        try:
            conversation = Conversation.objects.select_related("agent").get(pk=conversation_id)
            return str(message_post(conversation=conversation, text=text).turn.id)
        finally:
            close_old_connections()

    async def post(index: int, conversation_id: str, text: str) -> str:
        return await sync_to_async(post_message, thread_sensitive=False)(conversation_id, text)

    sampler = Sampler({"embedded": os.getpid()})
    sampling = asyncio.create_task(sampler.run())
    load = Load(conversation_ids=conversation_ids, poster=post, layer=get_channel_layer(),
                think=args.think, duration=args.duration)
    results = await load.run()
    sampling.cancel()
    report = sampler.report()
    await engine.wait_idle(timeout=120)  # let the last turns finish before the loop closes
    return {**summarize(results, len(conversation_ids)), "processes": report}


# --- the parent: run each mode, print the table -------------------------------------------
ROWS = [
    ("concurrent conversations", "conversations"), ("turns posted", "turns_posted"), ("errors", "errors"),
    ("turns/s (steady window)", "turns_per_s"), ("platform overhead p50 ms", "overhead_p50_ms"),
    ("platform overhead p99 ms", "overhead_p99_ms"), ("  before the model p50 ms", "before_model_p50_ms"),
    ("  after the model p50 ms", "after_model_p50_ms"), ("delta delivery p50 ms", "delta_p50_ms"),
    ("delta delivery p99 ms", "delta_p99_ms"), ("listener receive errors", "receive_errors"),
    ("bench loop lag max ms", "bench_loop_lag_max_ms"),
]


def print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    modes = list(results)
    print(f"\nchannel layer (scale mode): {args.layer}; "
          f"fake provider: {args.latency:.1f} s per answer in {args.deltas} deltas; think time ~{args.think:.0f} s; "
          f"steady window {args.duration:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':34}" + "".join(f"{m:>22}" for m in modes))
    for label, key in ROWS:
        print(f"{label:34}" + "".join(f"{results[m].get(key)!s:>22}" for m in modes))
    for mode in modes:
        for name, figures in results[mode].get("processes", {}).items():
            print(f"  {mode} {name}: peak RSS {figures['rss_peak_mb']} MB, CPU {figures['cpu_s']} s")
        print(f"  {mode} statuses: {results[mode].get('statuses')}  database: {results[mode].get('database')}")
        if results[mode].get("post_errors"):
            print(f"  {mode} post errors: {results[mode]['post_errors']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--embedded-conversations", type=int, default=None, help="default: --conversations")
    parser.add_argument("--think", type=float, default=30.0, help="seconds a customer waits between messages")
    parser.add_argument("--duration", type=float, default=60.0, help="steady window after the ramp-up")
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--deltas", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--pool", type=int, default=16, help="DATABASE_POOL_MAX_SIZE per web process")
    parser.add_argument("--http-connections", type=int, default=64, help="keep-alive connections per web process")
    parser.add_argument("--modes", default="scale,embedded")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--layer", default="redis", choices=["redis", "redis-pubsub"],
                        help="SUPPORT_CHANNEL_LAYER for scale mode")
    parser.add_argument("--doors", default="poll,wait,sse,widget", help="mixed mode: the doors the load uses")
    parser.add_argument("--child", choices=["scale", "embedded", "mixed"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(BASE_DIR)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support.settings")
    if args.child:
        if args.child == "embedded" and args.embedded_conversations:
            args.conversations = args.embedded_conversations
        if args.child == "mixed":
            from bench.mixed_load import child_mixed

            summary = child_mixed(args)
        else:
            summary = child_scale(args) if args.child == "scale" else child_embedded(args)
        Path(args.out).write_text(json.dumps(summary, default=str))
        return 0
    results = {}
    for mode in args.modes.split(","):
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        argv = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()
                if key not in ("modes", "child", "out") and value is not None]
        print(f"running {mode} mode...", flush=True)
        subprocess.run([sys.executable, __file__, *argv, "--child", mode, "--out", str(out)], check=True)
        results[mode] = json.loads(out.read_text())
        out.unlink()
    mixed = results.pop("mixed", None)
    if results:
        print_table(results, args)
    if mixed is not None:
        print(f"\nmixed doors {mixed['doors']} ({args.layer} layer), {mixed['conversations']} conversations over {args.processes} "
              f"processes; think ~{args.think:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        for key in ("posted", "answers", "latency_p50_p99_s", "errors", "database", "recovery",
                    "readyz_failures", "unfinished_customers", "processes"):
            print(f"  {key}: {mixed.get(key)}")
        results["mixed"] = mixed
    for mode, summary in results.items():
        for name, text in summary.get("logs", {}).items():
            if text.strip():
                print(f"\n{mode} {name} log (warnings):\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
