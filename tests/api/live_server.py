"""A real daphne process serving the project, for tests that need real HTTP.

The test binds a free port itself (port 0) and hands the listening socket to daphne
(`--fd`), so there is no race for the port. The server uses the test database (its
committed rows: use `django_db(transaction=True)`), the test process's secret key (so
visitor tokens agree), and its own engine, which runs the turns.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings

from tests.shared_database import database_url

ROOT = Path(__file__).resolve().parents[2]


class DaphneServer:
    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.set_inheritable(True)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="daphne-", suffix=".log", delete=False)  # noqa: SIM115  (closed in close())
        full_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "support.settings",
            "SUPPORT_SKIP_DOTENV": "1",
            "DJANGO_DEBUG": "false",
            "DJANGO_HTTPS": "false",  # plain http on loopback
            "DJANGO_SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": database_url(),
            "OPENAI_API_KEY": "",
            "SUPPORT_OFFLINE_WORD_DELAY": "0",
            "SUPPORT_API_RATE_KEY": "",
            "SUPPORT_API_RATE_VISITOR": "",
            "SUPPORT_API_RATE_STAFF": "",
            "SUPPORT_API_RATE_ANONYMOUS": "",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "--fd", str(self.sock.fileno()), "support.asgi:application"],
            cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT, pass_fds=[self.sock.fileno()],
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.url}/api/v1/conversations", timeout=2.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not answer:\n{self.log_tail()}")

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(Path(self.log.name).read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()
        self.log.close()
        os.unlink(self.log.name)
