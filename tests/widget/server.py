"""A real daphne server in a subprocess, with its own SQLite database and static files,
for browser tests and benchmarks. It can be killed (SIGKILL, like a crash) and started
again on the same port, which is what a browser page that stays open needs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DaphneServer:
    def __init__(self, var_dir: Path, *, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.var_dir / "daphne.log"
        self.command = [str(BIN / "daphne")]  # or [python, "-m", "support.serve"], as production
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "support.settings",
            "SUPPORT_SKIP_DOTENV": "1",
            "SUPPORT_VAR_DIR": str(self.var_dir),
            "DJANGO_STATIC_ROOT": str(self.var_dir / "static"),
            "DJANGO_DEBUG": "false",
            "DJANGO_HTTPS": "false",  # plain http on loopback
            "DJANGO_SECRET_KEY": "browser-tests-only-" + "k" * 40,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "OPENAI_API_KEY": "",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env.pop("DATABASE_URL", None)
        self.env.pop("REDIS_URL", None)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """Run a management command against this server's database."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, input=stdin,
            capture_output=True, text=True, timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("setup_demo")
        self.manage("collectstatic", "--noinput", "-v0")

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            [*self.command, "-b", "127.0.0.1", "-p", str(self.port), "support.asgi:application"],
            cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base_url + "/widget/docs/", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """Stop the server the hard way (SIGKILL), as a crash or an OOM kill would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def pid(self) -> Any:
        return self.process.pid if self.process else None

    def admin_password(self) -> str:
        return (self.var_dir / "admin-password.txt").read_text().strip()
