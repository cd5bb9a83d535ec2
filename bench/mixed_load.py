"""The mixed-door scale benchmark with outages: `bench/scale_load.py --modes mixed`.

Conversations are split evenly over four doors, each customer posting, getting the
stored answer and thinking (`--think`, ±50 %) before the next message:

- `poll`: `POST .../messages`, then `GET .../messages?after=<seq>` every second;
- `wait`: `POST .../messages?wait=25`, then polling if the wait ran out;
- `sse`: `POST` with `Accept: text/event-stream` until the turn's end, then polling
  if the stream ended without the answer;
- `widget`: one websocket per conversation for the whole run, as static/widget/widget.js
  keeps it (messages as frames, reconnect with `after=<last seq>` after any close).

Every post carries a `client_id` and is retried with backoff until the server stores
it, so an outage delays messages but must lose none. The benchmark starts its own
redis-server and its own PostgreSQL cluster (initdb + pg_ctl on free ports), never the
shared ones, and in the first half of the steady window restarts Redis (down ~0.3 s)
and stops PostgreSQL for 5 s (turns running then fail as interrupted; they are counted,
not retried). One probe conversation per door posts every second; a door's
recovery time is from the service's return to the first answer of a message its probe
posted after that return. `/readyz` of each process is sampled every 0.2 s.

At the end (after a drain) it compares what each client saw with the database: lost
= an answer stored in the database that the client never got (or, for the widget, any
stored item its socket never delivered); duplicates = a stored item delivered twice on
one connection, or a customer message answered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.procfile import free_port

DOORS = ("poll", "wait", "sse", "widget")
POLL_SECONDS = 1.0  # a polling client asks once a second while it waits for an answer
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/bin"))


class OwnPostgres:
    """A PostgreSQL cluster of the benchmark's own (trust auth, loopback, a free port)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_postgres, *argv], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self.port = free_port()
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.popen = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=0.5).ping():
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(timeout=10)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Customer:
    door: str
    conversation_id: str
    base_url: str
    token: str = ""  # visitor token (widget); API key otherwise
    probe: bool = False
    answered: dict[str, int] = field(default_factory=dict)  # client_id -> answer seq seen
    seen: set[int] = field(default_factory=set)  # widget: every seq its sockets delivered
    duplicates: int = 0
    posted: list[str] = field(default_factory=list)
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (posted at, answered at)
    finished: bool = False  # its last message was answered (or given up on) before the run ended
    live_at_end: bool = False  # widget: its socket was open and caught up when the run ended


@dataclass
class Run:
    api_key: str
    think: float
    stop_at: float
    errors: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))


def _answer_after(items: list[dict[str, Any]], user_seq: int) -> int | None:
    for item in items:
        if item["kind"] == "assistant" and item["seq"] > user_seq:
            return item["seq"]
    return None


async def _post(http: Any, run: Run, customer: Customer, client_id: str, text: str, *,
                params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
    """Post until the server has stored the message (client_id makes retries safe)."""
    delay = 0.5
    while True:
        try:
            response = await http.post(f"/api/v1/conversations/{customer.conversation_id}/messages",
                                       json={"text": text, "client_id": client_id}, params=params,
                                       headers={"Authorization": f"Bearer {run.api_key}", **(headers or {})})
            if response.status_code in (200, 201):
                return response
            run.errors[f"{customer.door} post HTTP {response.status_code}"] += 1
        except Exception as exc:
            run.errors[f"{customer.door} post {type(exc).__name__}"] += 1
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, 4)


async def _poll_answer(http: Any, run: Run, customer: Customer, user_seq: int, deadline: float) -> int | None:
    while time.monotonic() < deadline:
        try:
            response = await http.get(f"/api/v1/conversations/{customer.conversation_id}/messages",
                                      params={"after": str(user_seq)},
                                      headers={"Authorization": f"Bearer {run.api_key}"})
            if response.status_code == 200:
                seq = _answer_after(response.json()["results"], user_seq)
                if seq:
                    return seq
            else:
                run.errors[f"{customer.door} poll HTTP {response.status_code}"] += 1
        except Exception as exc:
            run.errors[f"{customer.door} poll {type(exc).__name__}"] += 1
        await asyncio.sleep(POLL_SECONDS)
    return None


async def _rest_message(http: Any, run: Run, customer: Customer, client_id: str, text: str) -> int | None:
    deadline = time.monotonic() + 120
    if customer.door == "poll":
        response = await _post(http, run, customer, client_id, text)
        return await _poll_answer(http, run, customer, response.json()["message"]["seq"], deadline)
    if customer.door == "wait":
        response = await _post(http, run, customer, client_id, text, params={"wait": "25"})
        body = response.json()
        seq = _answer_after(body.get("answer") or [], body["message"]["seq"])
        return seq or await _poll_answer(http, run, customer, body["message"]["seq"], deadline)
    # sse: the stream names the stored answer; a stream cut short falls back to polling
    user_seq = 0
    delay = 0.5
    while True:
        try:
            async with http.stream(
                "POST", f"/api/v1/conversations/{customer.conversation_id}/messages",
                json={"text": text, "client_id": client_id},
                headers={"Authorization": f"Bearer {run.api_key}", "Accept": "text/event-stream"},
            ) as response:
                if response.status_code not in (200, 201):
                    run.errors[f"sse post HTTP {response.status_code}"] += 1
                    raise RuntimeError("retry")
                turn_id = response.headers.get("x-turn-id")
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        event = json.loads("\n".join(data))
                        data = []
                        if event.get("type") == "message" and event["message"].get("client_id") == client_id:
                            user_seq = event["seq"]
                        if (event.get("type") == "message" and event.get("turn") == turn_id
                                and event["message"]["kind"] == "assistant"):
                            return event["seq"]
                        if event.get("type") in ("turn.failed", "turn.cancelled", "stream.timeout"):
                            break
            break
        except RuntimeError:
            pass
        except Exception as exc:
            run.errors[f"sse {type(exc).__name__}"] += 1
            if user_seq:
                break
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2, 4)
    if not user_seq:  # the stream broke before naming the message: ask the idempotent post
        response = await _post(http, run, customer, client_id, text)
        user_seq = response.json()["message"]["seq"]
    return await _poll_answer(http, run, customer, user_seq, deadline)


async def rest_customer(run: Run, customer: Customer) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=customer.base_url, timeout=60) as http:
        n = 0
        await asyncio.sleep(random.uniform(0, 1 if customer.probe else run.think))
        while time.monotonic() < run.stop_at:
            n += 1
            client_id = f"{customer.conversation_id[:8]}-{n}"
            customer.posted.append(client_id)
            started = time.monotonic()
            seq = await _rest_message(http, run, customer, client_id, f"question {n}: where is my order?")
            if seq:
                customer.answered[client_id] = seq
                customer.timeline.append((started, time.monotonic()))
                if not customer.probe:
                    run.latencies[customer.door].append(time.monotonic() - started)
            await asyncio.sleep(1.0 if customer.probe else run.think * random.uniform(0.5, 1.5))
    customer.finished = True


async def widget_customer(run: Run, customer: Customer, drain_until: list[float]) -> None:
    from websockets.asyncio.client import connect

    outbox: dict[str, tuple[str, float]] = {}  # client_id -> (text, posted at)
    user_seq: dict[str, int] = {}
    state = {"socket": None, "caught_up": False}

    async def flush() -> None:
        for client_id, (text, _) in list(outbox.items()):
            with contextlib.suppress(Exception):
                await state["socket"].send(json.dumps({"type": "message", "text": text, "client_id": client_id}))

    async def on_event(event: dict[str, Any], delivered: set[int]) -> None:
        kind = event["type"]
        if kind == "caught_up":
            state["caught_up"] = True
            await flush()
        elif kind == "message":
            seq = event["seq"]
            if seq in delivered:
                customer.duplicates += 1
            delivered.add(seq)
            customer.seen.add(seq)
            message = event["message"]
            if message["kind"] == "user" and message.get("client_id") in outbox:
                user_seq[message["client_id"]] = seq
                outbox.pop(message["client_id"])
            if message["kind"] == "assistant":
                for client_id, useq in list(user_seq.items()):
                    if seq > useq and client_id not in customer.answered:
                        customer.answered[client_id] = seq
                        started = posted_at[client_id]
                        customer.timeline.append((started, time.monotonic()))
                        if not customer.probe:
                            run.latencies["widget"].append(time.monotonic() - started)
                        del user_seq[client_id]
                        answered.set()
        elif kind == "error":
            run.errors[f"widget error frame {event.get('code')}"] += 1
            if event.get("client_id") in outbox:  # e.g. rate_limited: send it again shortly
                await asyncio.sleep(1.0)
                await flush()

    posted_at: dict[str, float] = {}
    answered = asyncio.Event()

    async def socket_loop() -> None:
        attempt = 0
        # Pages open over the ramp-up, not all in the same second.
        await asyncio.sleep(random.uniform(0, 1 if customer.probe else min(run.think, 30.0)))
        url = f"{customer.base_url.replace('http', 'ws')}/ws/conversations/{customer.conversation_id}/?token={customer.token}"
        while time.monotonic() < drain_until[0]:
            code = None
            try:
                async with connect(f"{url}&after={max(customer.seen, default=0)}", origin=url.replace("ws://", "http://").split("/ws/")[0],
                                   open_timeout=20, max_queue=None) as socket:
                    state["socket"] = socket
                    delivered: set[int] = set()
                    async for frame in socket:
                        attempt = 0
                        await on_event(json.loads(frame), delivered)
                code = getattr(socket.close_rcvd, "code", None)
            except Exception as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None) or type(exc).__name__
            state["socket"], state["caught_up"] = None, False
            if code != 4503:  # 4503 is the documented "reconnect and catch up"
                run.errors[f"widget closed {code}"] += 1
            else:
                run.errors["widget closed 4503 (documented: reconnect)"] += 1
                attempt = 0
            await asyncio.sleep(min(0.5 * 2 ** attempt, 15) * random.uniform(0.8, 1.2))
            attempt += 1

    receiver = asyncio.create_task(socket_loop())
    try:
        n = 0
        await asyncio.sleep(random.uniform(0, 1 if customer.probe else run.think))
        while time.monotonic() < run.stop_at:
            n += 1
            client_id = f"{customer.conversation_id[:8]}-{n}"
            customer.posted.append(client_id)
            posted_at[client_id] = time.monotonic()
            outbox[client_id] = (f"question {n}: where is my order?", posted_at[client_id])
            if state["socket"] is not None and state["caught_up"]:
                await flush()
            deadline = time.monotonic() + 120
            while client_id not in customer.answered and time.monotonic() < deadline:
                answered.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answered.wait(), 1.0)
            # A visitor may send one message per 2 s sustained (docs/widget.md).
            await asyncio.sleep(2.0 if customer.probe else run.think * random.uniform(0.5, 1.5))
        customer.finished = True
        await asyncio.sleep(max(0.0, drain_until[0] - time.monotonic()))
        customer.live_at_end = state["socket"] is not None and bool(state["caught_up"])
    finally:
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver


async def watch_readyz(ports: list[int], samples: list[tuple[float, bool]], failures: Counter[str]) -> None:
    """Sample /readyz of every process; count which check failed (or that it did not answer)."""
    import httpx

    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            ok = True
            for port in ports:
                try:
                    response = await http.get(f"http://127.0.0.1:{port}/readyz")
                    if response.status_code != 200:
                        ok = False
                        for name, check in response.json().get("checks", {}).items():
                            if not check.get("ok"):
                                failures[f"{name}: {check.get('error')}"] += 1
                except Exception as exc:
                    ok = False
                    failures[f"no answer: {type(exc).__name__}"] += 1
            samples.append((time.monotonic(), ok))
            await asyncio.sleep(0.2)


def recovery(returned_at: float, customers: list[Customer], readyz: list[tuple[float, bool]]) -> dict[str, Any]:
    """Seconds from a service's return to /readyz 200 on every process, and per door to
    the first answer of a probe message posted after the return."""
    ready = next((t for t, ok in readyz if t >= returned_at and ok), None)
    doors: dict[str, float | None] = {}
    for customer in customers:
        if customer.probe:
            done = [end for start, end in customer.timeline if start >= returned_at]
            doors[customer.door] = round(min(done) - returned_at, 2) if done else None
    return {"readyz_s": round(ready - returned_at, 2) if ready else None, "first_answer_s": doors}


def _create(door: str, key: Any) -> tuple[str, str]:
    from conversations.access import visitor_token_issue
    from conversations.api.services import api_conversation_create
    from conversations.services.conversations import conversation_create

    if door == "widget":
        conversation = conversation_create(channel="widget")
        return str(conversation.id), visitor_token_issue(conversation)
    return str(api_conversation_create(key=key, channel="api", customer_email="ada@example.com").id), ""


def verify_mixed(customers: list[Customer]) -> dict[str, Any]:
    """Each client's view against the database."""
    from django.db.models import Count, Q

    from conversations.models import Message

    lost: Counter[str] = Counter()
    not_stored: Counter[str] = Counter()
    twice: Counter[str] = Counter()
    for customer in customers:
        items = list(Message.objects.filter(conversation_id=customer.conversation_id)
                     .exclude(kind="note").order_by("seq").values_list("seq", "kind", "client_id"))
        users = {client_id: seq for seq, kind, client_id in items if kind == "user"}
        answers = [seq for seq, kind, _ in items if kind == "assistant"]
        for client_id in customer.posted:
            if client_id not in users:
                not_stored[customer.door if customer.finished else f"{customer.door} (run ended first)"] += 1
            elif any(a > users[client_id] for a in answers) and client_id not in customer.answered:
                # A customer still waiting when the run was cut off has not lost it yet.
                lost[customer.door if customer.finished else f"{customer.door} (run ended first)"] += 1
        if customer.door == "widget":
            # Missing on an open, caught-up socket is a silent loss; on a socket still
            # reconnecting when the run ended it is only late.
            missing = len({seq for seq, _, _ in items} - customer.seen)
            lost["widget items, socket live" if customer.live_at_end else "widget items, socket reconnecting"] += missing
        counts = (Message.objects.filter(conversation_id=customer.conversation_id, kind="user")
                  .annotate(n=Count("turns", filter=Q(turns__status="completed"))).values_list("n", flat=True))
        twice[customer.door] += sum(1 for n in counts if n > 1)
    from conversations.models import Turn

    failed = Counter(
        door for door, in Turn.objects.filter(status="failed").values_list("conversation__channel")
    )
    return {"lost": dict(lost), "posted_not_stored": dict(not_stored), "answered_twice": dict(twice),
            "duplicates_on_a_connection": sum(c.duplicates for c in customers),
            "failed_turns_by_channel": dict(failed)}


def child_mixed(args: Any) -> dict[str, Any]:
    from bench.scale_load import start_fake_llm, tail, wait_ready
    from support.procfile import process_env, run_once, spawn

    postgres, redis_server = OwnPostgres(), OwnRedis()
    postgres.init()
    postgres.start()
    redis_server.start()
    subprocess.run([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres",
                    "support_bench"], check=True)
    llm, provider_url = start_fake_llm(args.latency, args.deltas)
    var_dir = tempfile.mkdtemp(prefix="bench-mixed-")
    common = {
        "DATABASE_URL": postgres.url("support_bench"), "REDIS_URL": redis_server.url,
        "SUPPORT_REDIS_PREFIX": "bench", "SUPPORT_CHANNEL_LAYER": args.layer,
        "SUPPORT_SKIP_DOTENV": "1", "SUPPORT_VAR_DIR": var_dir, "DJANGO_SECRET_KEY": "bench-" + os.urandom(16).hex(),
        "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": provider_url, "OPENAI_TIMEOUT_SECONDS": "60",
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini", "DJANGO_DEBUG": "false", "LOG_LEVEL": "WARNING",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    os.environ.update({**common, "SUPPORT_SWEEP_INTERVAL_SECONDS": "0", "DATABASE_POOL_MAX_SIZE": "4"})
    webs: list[subprocess.Popen[bytes]] = []
    try:
        web_env = process_env({**common, "DATABASE_POOL_MAX_SIZE": str(args.pool), "SUPPORT_API_RATE_KEY": "",
                               "SUPPORT_WIDGET_RATE": ""})
        run_once("release", env=web_env)
        import django

        django.setup()
        from django.core.management import call_command

        from bench.load import percentile
        from conversations.api.keys import api_key_create
        from conversations.api.models import ApiClient, Scope

        call_command("setup_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
        ports = []
        for index in range(args.processes):
            ports.append(free_port())
            log = open(Path(var_dir) / f"web{index}.log", "wb")  # noqa: SIM115
            webs.append(spawn("web", env={**web_env, "PORT": str(ports[-1])}, stdout=log))
        wait_ready(ports, webs)
        key, raw = api_key_create(client=ApiClient.objects.create(name="bench"), name="bench",
                                  scopes=[Scope.READ, Scope.WRITE])
        doors = [d for d in args.doors.split(",") if d in DOORS] or list(DOORS)
        customers = []
        for n in range(args.conversations + len(doors)):
            door = doors[n % len(doors)]
            conversation_id, token = _create(door, key)
            customers.append(Customer(door=door, conversation_id=conversation_id, token=token,
                                      base_url=f"http://127.0.0.1:{ports[n % len(ports)]}",
                                      probe=n >= args.conversations))
        summary = asyncio.run(drive_mixed(args, customers, raw, ports, postgres, redis_server,
                                          {f"web{i}": w.pid for i, w in enumerate(webs)}))
        from django.db import connections

        connections.close_all()
        if hasattr(connections["default"], "close_pool"):
            connections["default"].close_pool()
        summary["database"] = verify_mixed(customers)
        summary["latency_p50_p99_s"] = {
            door: [round(percentile(summary["latencies"].get(door, []), q) or 0, 3) for q in (50, 99)]
            for door in doors}
        summary["answers"] = {door: len(summary["latencies"].get(door, [])) for door in doors}
        del summary["latencies"]
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
        redis_server.remove()
        postgres.remove()


async def drive_mixed(args: Any, customers: list[Customer], api_key: str, ports: list[int],
                      postgres: OwnPostgres, redis_server: OwnRedis, pids: dict[str, int]) -> dict[str, Any]:
    from bench.scale_load import Sampler

    ramp = min(args.think, 30.0)
    start = time.monotonic()
    run = Run(api_key=api_key, think=args.think, stop_at=start + ramp + args.duration)
    drain_until = [run.stop_at + 30]
    readyz: list[tuple[float, bool]] = []
    readyz_failures: Counter[str] = Counter()
    sampler = Sampler({**pids, "bench": os.getpid()})
    background = [asyncio.create_task(sampler.run()),
                  asyncio.create_task(watch_readyz(ports, readyz, readyz_failures))]
    tasks = [asyncio.create_task(widget_customer(run, c, drain_until) if c.door == "widget" else rest_customer(run, c))
             for c in customers]
    outages: dict[str, Any] = {}
    # The outages fall in the first half of the steady window, so there is time to see
    # every door recover before the customers stop.
    await asyncio.sleep(ramp + args.duration / 4)
    redis_server.stop()
    await asyncio.sleep(0.3)
    await asyncio.to_thread(redis_server.start)
    redis_back = time.monotonic()
    await asyncio.sleep(args.duration / 4)
    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(5)
    await asyncio.to_thread(postgres.start)
    pg_back = time.monotonic()
    await asyncio.wait(tasks, timeout=max(0.0, run.stop_at - time.monotonic()) + 150)
    for task in background:
        task.cancel()
    outages["redis_restart"] = recovery(redis_back, customers, readyz)
    outages["postgres_stop_5s"] = recovery(pg_back, customers, readyz)
    unfinished = sum(1 for t in tasks if not t.done())
    for task in tasks:
        task.cancel()
    errors = dict(run.errors)
    return {"conversations": sum(1 for c in customers if not c.probe), "doors": sorted({c.door for c in customers}),
            "errors": errors, "unfinished_customers": unfinished, "recovery": outages,
            "readyz_failures": dict(readyz_failures),
            "latencies": dict(run.latencies), "processes": sampler.report(),
            "posted": sum(len(c.posted) for c in customers if not c.probe)}
