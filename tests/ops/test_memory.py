"""Memory hygiene of a web process (bench/memory.py measures the figures): the ASGI app
loads no test tooling and no NumPy, and support.serve trims glibc's heap on the reactor.

Each runs in a fresh interpreter, so what the test suite imported cannot hide an import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, body: str, **env: str) -> dict:
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
        "DJANGO_SETTINGS_MODULE": "support.settings", "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(tmp_path / "var"), "PYTHONPATH": str(ROOT), **env,
    }
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_asgi_app_loads_no_test_tooling(tmp_path):
    result = _run(tmp_path, """
        import json, sys
        import support.asgi
        tools = ("schemathesis", "hypothesis", "pytest", "playwright", "fakeredis")
        print(json.dumps({"loaded": [name for name in tools if name in sys.modules],
                          "app": callable(support.asgi.application)}))
    """)

    assert result == {"loaded": [], "app": True}


def test_numpy_is_loaded_by_the_first_embedding_not_at_start_up(tmp_path):
    # ~8 MB of heap and ~12 MB of shared libraries a process carries only once it
    # embeds (history embeddings are on by default: the first turn's background step).
    result = _run(tmp_path, """
        import json, sys
        import support.asgi
        at_start = "numpy" in sys.modules
        from conversations.knowledge import semantic
        vectors = semantic._normalised([[3.0, 4.0]])
        print(json.dumps({"at_start": at_start, "after": "numpy" in sys.modules, "row": vectors[0].tolist()}))
    """)

    assert result == {"at_start": False, "after": True, "row": [0.6000000238418579, 0.800000011920929]}


def test_the_heap_is_trimmed_on_the_reactor_unless_turned_off(tmp_path):
    result = _run(tmp_path, """
        import json
        from support import serve
        from twisted.internet import reactor
        trim = serve.malloc_trim()  # glibc's, on this machine
        calls = []
        serve.malloc_trim = lambda: (lambda: calls.append(trim()))
        off = serve.schedule_malloc_trim(0)
        loop = serve.schedule_malloc_trim(0.05)
        reactor.callLater(0.5, reactor.stop)
        reactor.run()
        print(json.dumps({"trimmed": len(calls) >= 3, "results": sorted(set(calls)) in ([0], [1], [0, 1]),
                          "off": off is None, "running": loop.running, "default": serve.MALLOC_TRIM_SECONDS}))
    """)

    assert result == {"trimmed": True, "results": True, "off": True, "running": True, "default": 60.0}


def test_the_trim_interval_comes_from_the_environment(tmp_path):
    result = _run(tmp_path, """
        import json
        from support import serve
        print(json.dumps({"seconds": serve.MALLOC_TRIM_SECONDS, "loop": serve.schedule_malloc_trim()}))
    """, SUPPORT_MALLOC_TRIM_SECONDS="0")

    assert result == {"seconds": 0.0, "loop": None}
