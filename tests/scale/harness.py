"""The multi-process harness: real daphne processes sharing PostgreSQL and Redis.

`Cluster` starts the Procfile's `web` process several times on free ports (the command
line a deployment runs), pointed at the test database through a `TcpProxy` the test can
cut, at the test's Redis, and at the scripted fake provider served by the test process.
`EventRecorder` subscribes to conversation groups through Redis from the test process,
as a websocket consumer in another process would. `redis_outage` restarts the local
Redis server and always brings it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import redis

from conversations.agent.events import group_name
from conversations.channel_layers.redis_layer import LOST_MESSAGE_TYPE
from support.procfile import free_port, process_env, run_once, spawn

# What the daphne processes run with: short leases and sweeps so faults resolve in
# seconds (yet a lease outlives a few slow seconds of a loaded machine), and a small
# pool so the connection budget is easy to check.
LEASE_SECONDS = 5
POOL_MAX_SIZE = 6
PROVIDER_TIMEOUT_SECONDS = 1.5
PROVIDER_MAX_RETRIES = 2


class TcpProxy:
    """A loopback TCP forwarder that can be cut (every connection dropped, new ones
    closed at once, as when a database host becomes unreachable) and restored."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._sockets.discard(sock)

    def cut(self) -> None:
        self.down = True
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


@dataclass
class WebProcess:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def owns(self, lease_owner: str) -> bool:
        """Whether a Turn.lease_owner names this process's engine (host:pid:id)."""
        return lease_owner.split(":")[1:2] == [str(self.pid)]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """kill -9: no cleanup, no goodbye, exactly a crashed or OOM-killed worker."""
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


# Every cluster a test started in this test process, live or stopped.
_CLUSTERS: list[Cluster] = []


def stop_other_clusters(keep: Cluster | None = None) -> None:
    """Stop the web processes of every cluster but `keep`. Clusters on the same test
    database claim each other's turns (their sweepers dispatch whatever is queued) and
    publish them on their own Redis, so a test that runs a cluster of its own on another
    Redis would see answers stored but never delivered live. A stopped cluster's
    processes come back at its next `ensure_running`."""
    for cluster in _CLUSTERS:
        if cluster is not keep:
            cluster.stop()


@dataclass
class Cluster:
    """Web processes of one deployment; `env` is what each of them gets."""

    env: dict[str, str]
    log_dir: Path
    processes: list[WebProcess] = field(default_factory=list)

    def start(self, count: int) -> None:
        _CLUSTERS.append(self)
        for index in range(count):
            self.processes.append(self._spawn(f"web{index + 1}"))
        for process in self.processes:
            self.wait_ready(process)

    def _spawn(self, name: str) -> WebProcess:
        port = free_port()
        log_path = self.log_dir / f"{name}.log"
        env = {**self.env, "PORT": str(port), "HOST": "127.0.0.1"}
        env["DATABASE_URL"] = env["DATABASE_URL"].replace("APPNAME", f"support-{name}")
        with log_path.open("ab") as log:
            popen = spawn("web", env=env, stdout=log)
        return WebProcess(name=name, port=port, popen=popen, log_path=log_path)

    def wait_ready(self, process: WebProcess, timeout: float = 30.0) -> None:
        """Until the process answers HTTP. The first request also binds its engine to
        daphne's loop, which starts its sweeper."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            try:
                if httpx.get(f"{process.url}/admin/login/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{process.name} not ready in {timeout}s:\n{process.log_tail()}")

    def ensure_running(self) -> None:
        """Replace processes a test killed (a supervisor's Restart=always)."""
        for index, process in enumerate(self.processes):
            if not process.alive():
                self.processes[index] = self._spawn(process.name)
                self.wait_ready(self.processes[index])

    def owner_of(self, lease_owner: str) -> WebProcess:
        for process in self.processes:
            if process.owns(lease_owner):
                return process
        raise LookupError(f"no process of this cluster owns {lease_owner!r}")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid})\n{p.log_tail()}" for p in self.processes)


def cluster_env(*, database: dict[str, Any], proxy: TcpProxy, redis_url: str, redis_prefix: str,
                provider_url: str, var_dir: Path, secret_key: str) -> dict[str, str]:
    user = quote(database.get("USER") or "postgres")
    password = f":{quote(database['PASSWORD'])}" if database.get("PASSWORD") else ""
    # APPNAME is replaced per process, so pg_stat_activity tells whose connection is whose.
    database_url = f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{database['NAME']}?application_name=APPNAME"
    return process_env({
        "DATABASE_URL": database_url,
        "DATABASE_POOL_MAX_SIZE": str(POOL_MAX_SIZE),
        "DATABASE_POOL_MIN_SIZE": "1",
        "DATABASE_POOL_TIMEOUT": "2",
        "REDIS_URL": redis_url,
        "SUPPORT_REDIS_PREFIX": redis_prefix,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": provider_url,
        "OPENAI_TIMEOUT_SECONDS": str(PROVIDER_TIMEOUT_SECONDS),
        "OPENAI_MAX_RETRIES": str(PROVIDER_MAX_RETRIES),
        "SUPPORT_DEFAULT_MODEL": "gpt-4.1-mini",
        "SUPPORT_TURN_LEASE_SECONDS": str(LEASE_SECONDS),
        "SUPPORT_SWEEP_INTERVAL_SECONDS": "0.2",
        "SUPPORT_ORPHAN_GRACE_SECONDS": "0",
        "SUPPORT_DB_THREADS": "4",
        # The cluster outlives each test, whose teardown TRUNCATEs every table: a history
        # embedding thread writing then deadlocks with it. The thread itself is tested in
        # tests/engine/test_history_embeddings.py and runs in the widget's daphne servers.
        "SUPPORT_HISTORY_EMBED_BACKGROUND": "0",
        # As many tool threads as pooled connections: a tool thread that kept its
        # connection would starve the process (tests/scale/test_connections.py).
        "SUPPORT_TOOL_THREADS": str(POOL_MAX_SIZE),
        "SUPPORT_DELTA_FLUSH_SECONDS": "0",
        "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(var_dir),
        "DJANGO_SECRET_KEY": secret_key,  # one deployment, one key: sessions work on every process
        "DJANGO_DEBUG": "false",
        "DJANGO_HTTPS": "false",  # plain http on loopback
        "SUPPORT_WS_MAX_PER_ADDRESS": "0",  # many test sockets share one address
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "INFO",
    })


def run_release(env: dict[str, str]) -> None:
    """The Procfile's release step (migrations) against the cluster's database."""
    run_once("release", env={**env, "DATABASE_URL": env["DATABASE_URL"].replace("APPNAME", "support-release")})


class EventRecorder:
    """Subscribes to conversation groups through Redis, like a websocket consumer in
    another process, and records every event with its arrival time. Runs its own event
    loop on a thread so tests stay synchronous."""

    def __init__(self) -> None:
        from channels.layers import channel_layers

        self.layer = channel_layers.make_backend("default")  # as configured, a fresh instance
        self.events: list[dict[str, Any]] = []
        self.errors = 0
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="event-recorder", daemon=True)
        self._thread.start()
        self.channel = self._call(self.layer.new_channel())
        self._receiver = asyncio.run_coroutine_threadsafe(self._receive_forever(), self.loop)

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _receive_forever(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: a real client reconnects; so do we
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            if message.get("type") == LOST_MESSAGE_TYPE:  # the layer lost Redis: told, not silent
                self.errors += 1
                continue
            self.events.append({**message["event"], "_received": time.time()})

    def subscribe(self, conversation_id: Any) -> None:
        self._call(self.layer.group_add(group_name(conversation_id), self.channel))

    def resubscribe(self, conversation_id: Any, timeout: float = 15.0) -> None:
        """What a reconnecting client does: subscribe again, until an event sent to the
        group comes back (the layer's connection to Redis is usable again)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = {"type": "probe", "conversation": str(conversation_id), "id": time.monotonic()}
            with contextlib.suppress(Exception):
                self.subscribe(conversation_id)
                self._call(self.layer.group_send(group_name(conversation_id),
                                                 {"type": "conversation.event", "event": probe}))
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                if any(e.get("id") == probe["id"] for e in self.of("probe")):
                    return
                time.sleep(0.02)
        raise AssertionError(f"no event came back through the channel layer within {timeout}s")

    def of(self, kind: str, turn: Any = None) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["type"] == kind and (turn is None or e.get("turn") == str(turn))]

    def close(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.layer.close_pools()

        with contextlib.suppress(Exception):
            self._call(shutdown(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()


REDIS_SERVER_ARGS = [
    "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
    "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log",
]


def redis_restart_unsupported(redis_url: str) -> str | None:
    """Why this machine's Redis cannot be restarted by the test, or None."""
    if not redis_url.startswith("redis://127.0.0.1:6379") and not redis_url.startswith("redis://localhost:6379"):
        return f"the Redis outage test restarts the local server on 127.0.0.1:6379, not {redis_url}"
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        return "redis-server/redis-cli are not installed here"
    return None


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.05)


@contextlib.contextmanager
def redis_outage() -> Iterator[None]:
    """Stop the local Redis server (no save: it comes back empty, as after a crash),
    yield while it is down, start it again. Redis is running again on exit, whatever
    happened inside, so other users of the server are interrupted only briefly."""
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave"],
                   capture_output=True, timeout=10, check=False)
    try:
        _wait(lambda: not _redis_up(), 10, "Redis did not stop")
        yield
    finally:
        if not _redis_up():
            subprocess.run(["redis-server", *REDIS_SERVER_ARGS], capture_output=True, timeout=10, check=False)
        _wait(_redis_up, 15, "Redis did not start again")


def pg_connections(database_name: str) -> dict[str, dict[str, int]]:
    """Backends connected to the test database, by application_name and state."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT application_name, coalesce(state, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1, 2",
            [database_name],
        )
        counts: dict[str, dict[str, int]] = {}
        for app, state, count in cursor.fetchall():
            counts.setdefault(app, {})[state] = count
    return counts


class RedisServer:
    """A redis-server of the test's own on a free loopback port (no persistence: a
    restart comes back empty, as after a crash). Restarting it interrupts nobody else,
    unlike the shared server on 6379."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def up(self) -> bool:
        try:
            return bool(redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        log = (self.directory / "redis.log").open("ab")
        self.popen = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        _wait(self.up, 15, "the test's Redis did not start")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def restart(self, down_seconds: float = 0.3) -> float:
        """Stop (every connection dropped, every key gone), stay down, start again on the
        same port. Returns the monotonic time Redis answered again."""
        self.stop()
        time.sleep(down_seconds)
        self.start()
        return time.monotonic()
