"""Waiting API clients against one daphne process: how many `?wait=` and SSE clients one
process serves at once with a small connection pool, and the latency they see.

    .venv/bin/python bench/waiters_load.py --waiters 400 --pool 4 --latency 1

Scale mode: a fresh PostgreSQL database, Redis, one web process from the Procfile with
`DATABASE_POOL_MAX_SIZE=--pool`, and bench/fake_llm.py answering in `--latency` seconds.
All `--waiters` clients post within a moment (5 ms apart; half `?wait=60`, half `Accept: text/event-stream`,
each on its own conversation, through the REST API with one API key); while they wait,
the benchmark times `/readyz` and a polling post on the same process. It prints, per
mode, how many were answered, errors, and post-to-answer latency p50/p99, with the
machine's load average. Nothing is asserted.
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

ARRIVAL_GAP_SECONDS = 0.005


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def one_waiter(client: Any, index: int, conversation_id: str, key: str) -> dict[str, Any]:
    # Arrivals over a moment rather than one instant: 400 connects at once overflow
    # daphne's listen backlog (Twisted's 50) and some are reset before Django sees them.
    await asyncio.sleep(index * ARRIVAL_GAP_SECONDS)
    mode = "sse" if index % 2 else "wait"
    path = f"/api/v1/conversations/{conversation_id}/messages"
    headers = {"Authorization": f"Bearer {key}"}
    body = {"text": "Where is my order?", "client_id": f"m-{index}"}
    started = time.monotonic()
    try:
        if mode == "wait":
            response = await client.post(path + "?wait=60", json=body, headers=headers)
            ok = response.status_code == 201 and response.json()["turn"]["status"] == "completed"
            return {"mode": mode, "ok": ok, "status": response.status_code, "seconds": time.monotonic() - started}
        async with client.stream("POST", path, json=body, headers={**headers, "Accept": "text/event-stream"}) as response:
            completed = False
            async for line in response.aiter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("type") == "turn.completed":
                    completed = True
            return {"mode": mode, "ok": completed, "status": response.status_code,
                    "seconds": time.monotonic() - started}
    except Exception as exc:  # a benchmark reports, it does not stop
        return {"mode": mode, "ok": False, "status": type(exc).__name__, "seconds": time.monotonic() - started}


async def drive(url: str, conversation_ids: list[str], spare_id: str, key: str) -> dict[str, Any]:
    import httpx

    limits = httpx.Limits(max_connections=len(conversation_ids) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        tasks = [asyncio.ensure_future(one_waiter(client, i, c, key)) for i, c in enumerate(conversation_ids)]
        # the posts are in; clients wait
        await asyncio.sleep(len(conversation_ids) * ARRIVAL_GAP_SECONDS + 0.5)
        probe_started = time.monotonic()
        ready = await client.get("/readyz")
        probe = {"readyz": ready.status_code, "readyz_ms": round((time.monotonic() - probe_started) * 1000)}
        poll_started = time.monotonic()
        posted = await client.post(f"/api/v1/conversations/{spare_id}/messages", json={"text": "Hi"},
                                   headers={"Authorization": f"Bearer {key}"})
        probe.update(poll_post=posted.status_code, poll_post_ms=round((time.monotonic() - poll_started) * 1000),
                     still_waiting=sum(not t.done() for t in tasks))
        results = await asyncio.gather(*tasks)
    summary: dict[str, Any] = {"while_waiting": probe}
    for mode in ("wait", "sse"):
        mine = [r for r in results if r["mode"] == mode]
        seconds = [r["seconds"] for r in mine if r["ok"]]
        summary[mode] = {
            "clients": len(mine), "answered": len(seconds),
            "errors": sorted({str(r["status"]) for r in mine if not r["ok"]}),
            "latency_p50_p99_s": [round(percentile(seconds, q) or 0, 2) for q in (50, 99)],
        }
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--waiters", type=int, default=200)
    parser.add_argument("--pool", type=int, default=4)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    import psycopg

    base = urlsplit(args.database_url)
    name = f"support_bench_waiters_{os.getpid()}"
    admin = dict(host=base.hostname, port=base.port or 5432, user=base.username or "postgres",
                 password=base.password, dbname=base.path.lstrip("/") or "postgres", autocommit=True)
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    llm = subprocess.Popen([sys.executable, "-m", "bench.fake_llm", "--latency", str(args.latency), "--deltas", "10"],
                           cwd=BASE_DIR, stdout=subprocess.PIPE)
    provider_url = f"http://127.0.0.1:{llm.stdout.readline().decode().split()[1]}/v1"  # type: ignore[union-attr]
    var_dir = tempfile.mkdtemp(prefix="bench-waiters-")
    common = {
        "DATABASE_URL": urlunsplit((base.scheme, base.netloc, f"/{name}", "", "")), "REDIS_URL": args.redis_url,
        "SUPPORT_REDIS_PREFIX": f"benchw{os.getpid()}", "SUPPORT_SKIP_DOTENV": "1", "SUPPORT_VAR_DIR": var_dir,
        "DJANGO_SECRET_KEY": "bench-" + os.urandom(16).hex(), "OPENAI_API_KEY": "bench-key",
        "OPENAI_BASE_URL": provider_url, "OPENAI_TIMEOUT_SECONDS": "60", "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini",
        "DJANGO_DEBUG": "false", "DJANGO_HTTPS": "false", "LOG_LEVEL": "WARNING",
    }
    os.environ.update({**common, "SUPPORT_SWEEP_INTERVAL_SECONDS": "0", "DATABASE_POOL_MAX_SIZE": "2",
                       "DJANGO_SETTINGS_MODULE": "support.settings"})
    web = None
    try:
        web_env = process_env({**common, "DATABASE_POOL_MAX_SIZE": str(args.pool), "SUPPORT_API_RATE_KEY": ""})
        run_once("release", env=web_env)
        import django

        django.setup()
        from django.core.management import call_command

        from conversations.api.keys import api_key_create
        from conversations.api.models import ApiClient, Scope
        from conversations.api.services import api_conversation_create

        call_command("setup_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        key, raw = api_key_create(client=ApiClient.objects.create(name="bench"), name="bench",
                                  scopes=[Scope.READ, Scope.WRITE])
        ids = [str(api_conversation_create(key=key, channel="api").id) for _ in range(args.waiters + 1)]
        port = free_port()
        log_path = Path(var_dir) / "web.log"
        web = spawn("web", env={**web_env, "PORT": str(port)}, stdout=open(log_path, "wb"))  # noqa: SIM115
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or web.poll() is not None:
                raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        summary = asyncio.run(drive(f"http://127.0.0.1:{port}", ids[:-1], ids[-1], raw))
        summary["load_average"] = os.getloadavg()
        print(json.dumps({"waiters": args.waiters, "pool": args.pool, "latency_s": args.latency, **summary}, indent=1))
        return 0
    finally:
        if web is not None:
            web.send_signal(signal.SIGTERM)
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


if __name__ == "__main__":
    raise SystemExit(main())
