"""`manage.py bench_dashboard`: time the operations dashboard over generated history.

Creates a scratch database beside the configured one (SQLite: `var/bench-dashboard.sqlite3`;
PostgreSQL: `<name>_bench_dashboard`), fills it with `--turns` turns over `--days` days
(`conversations.ops.sample_data`), then requests the dashboard page for the whole range
as a logged-in superuser `--repeat` times and prints the render times and where the
time goes. The configured database is never touched. `--keep` keeps the scratch
database (and reuses its data on the next run).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.test import Client
from django.test.utils import setup_test_environment

from conversations.ops.dashboard import dashboard_data, default_range
from conversations.ops.models import TurnFact
from conversations.ops.sample_data import generate


class Command(BaseCommand):
    help = "Generate history and time the operations dashboard page."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--turns", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--repeat", type=int, default=5)
        parser.add_argument("--keep", action="store_true", help="Keep (and reuse) the scratch database.")

    def handle(self, *args: Any, **options: Any) -> None:
        test_settings = connection.settings_dict.setdefault("TEST", {})
        if connection.vendor == "sqlite":
            test_settings["NAME"] = str(settings.VAR_DIR / "bench-dashboard.sqlite3")
        else:
            test_settings["NAME"] = f"{connection.settings_dict['NAME']}_bench_dashboard"
        setup_test_environment()
        logging.getLogger("support.request").setLevel(logging.WARNING)
        keep = options["keep"]
        name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=keep)
        try:
            self._run(name, options)
        finally:
            if not keep:
                connection.creation.destroy_test_db(name, verbosity=0, keepdb=False)

    def _run(self, name: str, options: Any) -> None:
        from django.contrib.auth import get_user_model

        out = self.stdout.write
        out(f"database: {connection.vendor} {name}")
        existing = TurnFact.objects.count()
        if existing < options["turns"]:
            began = time.perf_counter()
            made = generate(turns=options["turns"] - existing, days=options["days"])
            out(
                f"generated {made.turns:,} turns, {made.conversations:,} conversations, "
                f"{made.messages:,} messages over {options['days']} days in {time.perf_counter() - began:.1f} s"
            )
        else:
            out(f"reusing {existing:,} turns")
        if connection.vendor == "postgresql":
            # What autovacuum does on a live database: statistics for the planner and a
            # visibility map so index-only scans stay index-only.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
        user, _ = get_user_model().objects.get_or_create(
            username="bench-dashboard", defaults={"is_staff": True, "is_superuser": True}
        )
        client = Client()
        client.force_login(user)
        url = f"/admin/ops/dashboard/?days={options['days']}"
        first = client.get(url)
        if first.status_code != 200:
            raise SystemExit(f"dashboard answered {first.status_code}")
        times, cpu = [], []
        for _ in range(options["repeat"]):
            began, began_cpu = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - began) * 1000)
            cpu.append((time.process_time() - began_cpu) * 1000)
            assert response.status_code == 200
        start, end = default_range(days=options["days"])
        data = dashboard_data(start=start, end=end)
        out(
            f"range: {start} .. {end}: {data.totals.turns:,} turns, {data.totals.conversations:,} conversations, "
            f"page {len(first.content) / 1024:.0f} KiB"
        )
        out(
            f"dashboard page render over {options['days']} days: min {min(times):.0f} ms, "
            f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms ({options['repeat']} runs; "
            f"first request {self._first_ms(client, url):.0f} ms after a fresh connection)"
        )
        # Wall time suffers when other processes share the CPU; this process's CPU time
        # (which includes SQLite's work, not a PostgreSQL server's) much less so.
        out(f"CPU time of this process per render: min {min(cpu):.0f} ms, median {statistics.median(cpu):.0f} ms")
        out("queries (last run, ms): " + ", ".join(f"{k} {v:.0f}" for k, v in data.timings_ms.items()))

    def _first_ms(self, client: Client, url: str) -> float:
        connection.close()
        began = time.perf_counter()
        client.get(url)
        return (time.perf_counter() - began) * 1000
