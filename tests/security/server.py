"""The Procfile's `web` process (real daphne, the deployed command line) for the security
tests: forged headers, slow clients and hostile frames go to the server a deployment runs.

It shares the test database (committed rows: `django_db(transaction=True)`) and the test
process's secret key, on a free port, with the offline model and rate limits as given.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from django.conf import settings

from support.procfile import free_port, process_env, spawn
from tests.shared_database import database_url


class WebProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log = log

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def web_process(env: dict[str, str] | None = None) -> Iterator[WebProcess]:
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="web-", suffix=".log")
    log = Path(name)
    extra = {
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SUPPORT_SKIP_DOTENV": "1",
        "DJANGO_DEBUG": "false",
        "DJANGO_HTTPS": "false",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "DATABASE_URL": database_url(),
        "OPENAI_API_KEY": "",
        "SUPPORT_OFFLINE_WORD_DELAY": "0",
        "LOG_LEVEL": "INFO",
        **(env or {}),
    }
    with os.fdopen(fd, "wb") as out:
        process = spawn("web", env=process_env(extra), stdout=out)
    web = WebProcess(process, port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{web.log_tail()}")
            try:
                httpx.get(f"{web.url}/healthz", timeout=2.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not answer:\n{web.log_tail()}") from None
                time.sleep(0.1)
        yield web
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)
