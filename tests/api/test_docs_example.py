"""The API guide's example runs, as printed in docs/api.md, against the offline model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conversations.models import Turn
from tests.shared_database import database_url

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "api_quickstart.py"


def test_the_guide_shows_the_example_file_verbatim():
    guide = (ROOT / "docs" / "api.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```" in guide
    assert "docs/api.md" in (ROOT / "README.md").read_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_example_creates_streams_and_retries_against_the_offline_model(offline_server, demo):
    key = subprocess.run(
        [sys.executable, "manage.py", "api_key_create", "--client", "demo", "--name", "quickstart", "--quiet"],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "DATABASE_URL": database_url(), "SUPPORT_SKIP_DOTENV": "1"},
    ).stdout.strip()
    run = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SUPPORT_API_URL": offline_server.url, "SUPPORT_API_KEY": key},
    )
    assert run.returncode == 0, run.stderr + offline_server.log_tail()
    out = run.stdout
    assert "(Offline demo model" in out
    assert "[Looking up your order...]" in out
    assert "Order 1001 is shipped" in out
    assert "(turn cancelled)" in out and "retrying" in out
    assert out.count("-> turn.completed") == 2
    assert "completed (attempt 2)" in out and "cancelled (attempt 1)" in out
    retried = Turn.objects.get(attempt=2)
    assert retried.status == "completed" and retried.trigger == "api_retry"
