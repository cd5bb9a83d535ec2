"""Reading the Procfile and starting its processes.

A Procfile line is `name: shell command`; the command is run by `/bin/sh` with `exec`,
so the process id returned is the server's own (a signal sent to it reaches daphne, not
a shell). The directory holding this project's Python is put first on PATH, so `python`
and `daphne` in the Procfile are the project's. Used by `bin/serve-scale`, the
multi-process tests and the scale benchmark, so the command lines they run are the ones
a deployment runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

BASE_DIR = Path(__file__).resolve().parent.parent
PROCFILE = BASE_DIR / "Procfile"


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    """Process types to commands, in file order. Comments and blank lines are skipped."""
    processes: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().isidentifier() or not command.strip():
            raise ValueError(f"{path}:{number}: expected 'name: command', got {line!r}")
        processes[name.strip()] = command.strip()
    return processes


def process_env(extra: dict[str, str] | None = None, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Procfile process: `base` (default: ours) plus `extra`,
    with this interpreter's bin directory first on PATH."""
    env = dict(os.environ if base is None else base)
    env.update(extra or {})
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "/usr/bin:/bin")])
    env.setdefault("DJANGO_SETTINGS_MODULE", "support.settings")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def spawn(
    kind: str,
    *,
    env: dict[str, str],
    stdout: IO[Any] | int | None = None,
    procfile: Path = PROCFILE,
) -> subprocess.Popen[bytes]:
    """Start one process of type `kind` (its own session, so a terminal's Ctrl-C reaches
    only the runner, which then stops its children in order)."""
    command = read_procfile(procfile)[kind]
    return subprocess.Popen(
        ["/bin/sh", "-c", f"exec {command}"],
        cwd=procfile.parent,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        start_new_session=True,
    )


def run_once(kind: str, *, env: dict[str, str], timeout: float = 300.0) -> subprocess.CompletedProcess[bytes]:
    """Run a one-off process type (e.g. `release`) to completion; raises if it fails."""
    command = read_procfile()[kind]
    return subprocess.run(
        ["/bin/sh", "-c", f"exec {command}"], cwd=BASE_DIR, env=env, check=True,
        capture_output=True, timeout=timeout,
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
