"""`manage.py bench_console`: time the console's pages on a large data set and print
query counts and render times.

It generates (once; later runs reuse them) N conversations and one long conversation with
bulk_create, then renders the pages through Django's test client as a superuser: the
conversation list (default, filtered, searched, deep page), the long conversation's page
and "load earlier" page, a turn audit, and a plain-text export. Run it on a scratch
database, not one with real data:

    SUPPORT_VAR_DIR=var/bench python manage.py migrate
    SUPPORT_VAR_DIR=var/bench python manage.py bench_console --conversations 100000 --items 5000
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conversations.console.benchdata import conversation_long, conversations_generate
from conversations.models import Agent, Conversation, Message, Turn

PREFIX = "bench"


class Command(BaseCommand):
    help = "Time the staff console's pages on N conversations and one long conversation."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--conversations", type=int, default=100_000)
        parser.add_argument("--items", type=int, default=5000, help="Items in the long conversation.")
        parser.add_argument("--items-per-conversation", type=int, default=4)
        parser.add_argument("--runs", type=int, default=5, help="Timed renders per page (median shown).")
        parser.add_argument("--force", action="store_true", help="Run even if the database holds other conversations.")

    def handle(self, *args: Any, **options: Any) -> None:
        agent, _ = Agent.objects.get_or_create(name="Bench agent", defaults={"tools": ["lookup_order"]})
        others = Conversation.objects.exclude(agent=agent).exists()
        if others and not options["force"]:
            raise CommandError(
                "This database holds other conversations. Run the benchmark on a scratch database "
                "(SUPPORT_VAR_DIR=var/bench python manage.py migrate; then this command with the same "
                "variable), or pass --force."
            )
        self._generate(agent, options)
        user = self._superuser()
        client = Client()
        client.force_login(user)
        long = Conversation.objects.filter(agent=agent, customer_id__startswith=f"{PREFIX}-long-").first()
        turn = Turn.objects.filter(conversation=long).order_by("-created_at").first()
        some = Conversation.objects.filter(agent=agent).order_by("customer_id").values_list("customer_id", flat=True)[500]
        if long is None or turn is None:
            raise CommandError("no long conversation with a turn: generate the data set first")
        base = "/admin/conversations/conversation/"
        deep = max(1, min(1000, options["conversations"] // 50 - 1))
        pages = [
            ("list: default (waiting on staff first)", base),
            ("list: failed turn filter", base + "?has_failed_turn__exact=1"),
            ("list: waiting on staff", base + "?status__exact=waiting_on_staff"),
            ("list: AI paused, last 7 days", base + "?ai_paused__exact=1&updated_at__gte=" + _days_ago(7)),
            ("list: search customer id", base + "?q=" + some),
            (f"list: page {deep}", f"{base}?p={deep}"),
            ("list: search message text", base + "?q=reroute+order+1000"),
            (f"conversation page ({long.message_count} items)", f"{base}{long.pk}/change/"),
            ("conversation: load earlier", f"{base}{long.pk}/items/?before={long.message_count // 2}"),
            ("turn audit", f"/admin/conversations/turn/{turn.pk}/change/"),
            (f"export txt ({long.message_count} items)", f"{base}{long.pk}/export.txt"),
        ]
        self.stdout.write(
            f"\n{Conversation.objects.count():,} conversations, {Message.objects.count():,} items, "
            f"{Turn.objects.count():,} turns ({connection.vendor})\n"
        )
        # Wall time suffers when other processes share the CPU; CPU time of this process
        # (SQLite runs in it) is the steadier figure on a busy machine.
        self.stdout.write(f"{'page':44} {'queries':>8} {'median ms':>10} {'max ms':>8} {'cpu ms':>8}")
        for label, url in pages:
            queries, times, cpu = self._measure(client, url, options["runs"])
            self.stdout.write(
                f"{label:44} {queries:>8} {statistics.median(times):>10.1f} {max(times):>8.1f} "
                f"{statistics.median(cpu):>8.1f}"
            )

    def _generate(self, agent: Agent, options: dict[str, Any]) -> None:
        wanted = options["conversations"]
        have = Conversation.objects.filter(agent=agent, customer_id__regex=rf"^{PREFIX}-[0-9]+$").count()
        if have < wanted:
            started = time.monotonic()
            self.stdout.write(f"Generating {wanted - have:,} conversations...")
            conversations_generate(
                agent=agent, count=wanted - have, items_per_conversation=options["items_per_conversation"],
                prefix=PREFIX, offset=have,
            )
            self.stdout.write(f"  done in {time.monotonic() - started:.1f}s")
        long = Conversation.objects.filter(agent=agent, customer_id__startswith=f"{PREFIX}-long-").first()
        if long is None or long.message_count != options["items"]:
            if long is not None:
                long.delete()
            self.stdout.write(f"Generating a conversation of {options['items']:,} items...")
            conversation_long(agent=agent, items=options["items"], prefix=f"{PREFIX}-long")
        connection.cursor().execute("ANALYZE") if connection.vendor in ("sqlite", "postgresql") else None

    def _superuser(self) -> Any:
        User = get_user_model()
        user = User.objects.filter(username="bench-admin").first()
        if user is None:
            user = User.objects.create_superuser("bench-admin", "bench@example.com", None)
        return user

    def _measure(self, client: Client, url: str, runs: int) -> tuple[int, list[float], list[float]]:
        self._get(client, url)  # warm caches (templates, permissions)
        times, cpu = [], []
        queries = 0
        for _ in range(runs):
            with CaptureQueriesContext(connection) as captured:
                started, started_cpu = time.perf_counter(), time.process_time()
                self._get(client, url)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
            queries = len(captured.captured_queries)
        return queries, times, cpu

    @staticmethod
    def _get(client: Client, url: str) -> None:
        response = client.get(url)
        if response.status_code != 200:
            raise CommandError(f"{url} answered {response.status_code}")
        if isinstance(response, StreamingHttpResponse):
            for _ in response.streaming_content:
                pass


def _days_ago(days: int) -> str:
    """A timezone-aware start of day, as the admin's date filter links carry it."""
    from datetime import datetime, time, timedelta
    from urllib.parse import quote

    from django.utils import timezone

    day = timezone.localdate() - timedelta(days=days)
    return quote(timezone.make_aware(datetime.combine(day, time.min)).isoformat(sep=" "))
