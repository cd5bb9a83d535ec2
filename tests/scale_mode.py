"""Pytest plugin: scale-mode tests (`@pytest.mark.scale`) and when they may skip.

They need PostgreSQL (`DATABASE_URL=postgres://...`) and Redis (`REDIS_URL`). Without
them they skip, saying how to run them (`make test-scale`). In CI the scale run
(`make test-scale` sets SUPPORT_SCALE_RUN=1) must really run them: there a skipped
scale test is reported as a failure, and a scale run in which no scale test passed
fails the session, so neither a missing service nor an empty selection passes quietly.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pytest

HOW = "run `make test-scale` (DATABASE_URL=postgres://... and REDIS_URL=redis://...)"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def scale_run() -> bool:
    """This session is the scale run of the suite (`make test-scale`)."""
    return os.environ.get("SUPPORT_SCALE_RUN") == "1"


@cache
def scale_unavailable() -> str | None:
    """Why scale-mode tests cannot run here, or None when PostgreSQL and Redis answer."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if urlsplit(database_url).scheme not in ("postgres", "postgresql", "pgsql"):
        return f"scale mode needs PostgreSQL: {HOW}"
    if not redis_url:
        return f"scale mode needs Redis: {HOW}"
    try:
        import psycopg

        parts = urlsplit(database_url)
        with psycopg.connect(
            host=parts.hostname or "localhost", port=parts.port or 5432, user=parts.username or "postgres",
            password=parts.password or None, dbname=parts.path.lstrip("/") or "postgres", connect_timeout=3,
        ):
            pass
    except Exception as exc:
        return f"PostgreSQL at {urlsplit(database_url).netloc} is unreachable: {exc}".strip()
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis at {redis_url} is unreachable: {exc}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    scale_items = [item for item in items if item.get_closest_marker("scale")]
    if not scale_items:
        return
    reason = scale_unavailable()
    if reason:
        for item in scale_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.skipped and item.get_closest_marker("scale") and in_ci() and scale_run():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"scale-mode test skipped in the CI scale run (not allowed): {reason}"
    return report


class _Tally:
    passed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "scale" in report.keywords:
        _Tally.passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if in_ci() and scale_run() and _Tally.passed == 0 and exitstatus in (0, 5):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if in_ci() and scale_run() and _Tally.passed == 0:
        terminalreporter.write_line("scale run: no scale-mode test passed; failing the CI run", red=True)
