"""`bin/serve-scale`, the Procfile runner a deployment without systemd can use: it
migrates, serves on consecutive ports, restarts a web process that dies, and stops
them all on SIGTERM."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support.procfile import BASE_DIR, free_port
from tests.conftest import wait_for

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def two_free_ports() -> int:
    """A free port whose successor is free too (serve-scale uses consecutive ports)."""
    while True:
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue


def test_serve_scale_runs_restarts_and_stops_web_processes(_cluster, tmp_path: Path):
    cluster, _proxy = _cluster
    port = two_free_ports()
    log = (tmp_path / "serve-scale.log").open("wb")
    env = {**cluster.env, "DATABASE_URL": cluster.env["DATABASE_URL"].replace("APPNAME", "support-serve-scale")}
    runner = subprocess.Popen(
        [sys.executable, str(BASE_DIR / "bin" / "serve-scale"), "--web", "2", "--port", str(port), "--grace", "5"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )

    def output() -> str:
        return (tmp_path / "serve-scale.log").read_text()

    try:
        # It migrates (the Procfile's release), then serves on two consecutive ports
        wait_for(lambda: answers(port) and answers(port + 1), timeout=60, interval=0.2)
        assert "release: python manage.py migrate --noinput" in output()
        pids = dict(re.findall(r"web\.(\d+): pid (\d+)", output()))
        # When a web process dies, it is started again
        subprocess.run(["kill", "-9", pids[str(port)]], check=True)
        wait_for(lambda: len(re.findall(rf"web\.{port}: pid", output())) == 2 and answers(port), timeout=30)
        # When the runner gets SIGTERM, every web process stops
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=20) == 0
        deadline = time.monotonic() + 10
        while (answers(port) or answers(port + 1)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not answers(port) and not answers(port + 1)
    finally:
        if runner.poll() is None:
            runner.kill()
        log.close()
