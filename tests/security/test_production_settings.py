"""Production defaults: with DJANGO_DEBUG=false behind a TLS proxy `check --deploy` is
clean, cookies are Secure and HttpOnly, http is redirected (probes excepted), and the
secrets setup writes are readable by their owner only."""

from __future__ import annotations

import io
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from tests.security.server import web_process

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "support.example.com,127.0.0.1",
    "DJANGO_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def test_check_deploy_is_clean_with_debug_off():
    env = {**os.environ, "SUPPORT_SKIP_DOTENV": "1", **PRODUCTION}
    env.pop("DJANGO_HTTPS", None)
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_behind_tls_cookies_are_secure_and_http_is_redirected(demo):
    with web_process({**PRODUCTION, "DJANGO_HTTPS": "true"}) as web:
        plain = httpx.get(f"{web.url}/admin/login/", headers={"Host": "support.example.com"})
        secure = httpx.get(f"{web.url}/admin/login/",
                           headers={"Host": "support.example.com", "X-Forwarded-Proto": "https"})
        probe = httpx.get(f"{web.url}/healthz")

    assert plain.status_code == 301 and plain.headers["Location"] == "https://support.example.com/admin/login/"
    assert secure.status_code == 200
    cookie = secure.headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "script-src 'self'" in secure.headers["Content-Security-Policy"]
    assert probe.status_code == 200


def test_secrets_written_by_setup_are_private(tmp_path, settings, db):
    settings.VAR_DIR = tmp_path
    old_umask = os.umask(0o022)
    try:
        call_command("setup_demo", stdout=io.StringIO())
        env = {**os.environ, "SUPPORT_SKIP_DOTENV": "1", "SUPPORT_VAR_DIR": str(tmp_path)}
        env.pop("DJANGO_SECRET_KEY", None)
        subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=120)
    finally:
        os.umask(old_umask)

    for name in ("admin-password.txt", "secret.key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
