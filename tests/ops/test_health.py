"""/healthz and /readyz: alive, ready, and honest about what is unreachable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_touching_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_is_ready_when_database_and_channel_layer_answer():
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["channel_layer"]["ok"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
@pytest.mark.parametrize("backend", [
    "channels_redis.core.RedisChannelLayer",
    "conversations.channel_layers.redis_layer.RedisChannelLayer",  # its own readiness_check
    "conversations.channel_layers.pubsub_layer.RedisPubSubChannelLayer",
])
def test_readyz_is_503_when_the_channel_layer_is_unreachable(settings, backend):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": backend,
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{_closed_port()}/0"]},
        }
    }
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["channel_layer"] == {"ok": False, "error": "ConnectionError"}


PROBE = """
import django, json
django.setup()
from django.test import Client
response = Client().get("/readyz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "support.settings",
        "SUPPORT_SKIP_DOTENV": "1",
        "SUPPORT_VAR_DIR": str(tmp_path),
        # A database in a directory that does not exist cannot be opened.
        "DATABASE_URL": f"sqlite:///{tmp_path}/missing/db.sqlite3",
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 503
    assert answer["body"]["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    assert answer["body"]["checks"]["channel_layer"]["ok"] is True
    assert "missing" not in result.stdout, "connection details must not leak"
