"""`manage.py bench_api`: latency of the REST API's two hottest calls, in process.

Measures, through the whole Django stack (middleware, DRF, API-key authentication,
rate limiting, the database), p50/p90/p99 of:
- listing 50 messages (`GET .../messages?limit=50`);
- posting a customer message (`POST .../messages`: message stored, turn queued).

The engine is detached while posting (turns stay queued, nothing calls a model), so
the figure is the API's own latency rather than model time competing for the CPU;
`--run-turns` keeps it attached. Everything the benchmark creates is deleted at the
end. Run it on the database you want to measure (SQLite by default):

    DJANGO_DEBUG=false DJANGO_HTTPS=false python manage.py bench_api
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.test import Client

from conversations.agent.engine import engine
from conversations.api.keys import api_key_create
from conversations.api.models import ApiClient, Scope
from conversations.api.services import api_conversation_create
from conversations.models import Agent, Conversation
from conversations.models.message import MessageKind
from conversations.services.items import items_append


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Command(BaseCommand):
    help = "Print p50/p99 latency of listing 50 messages and posting a message through the REST API."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", type=int, default=500, help="Measured requests per scenario.")
        parser.add_argument("--warmup", type=int, default=50, help="Unmeasured requests first.")
        parser.add_argument("--run-turns", action="store_true", help="Let the engine run the queued turns.")

    def handle(self, *args: Any, **options: Any) -> None:
        tag = uuid.uuid4().hex[:8]
        temp_agent = None
        if not Agent.objects.exists():
            temp_agent = Agent.objects.create(name=f"bench-{tag}", is_default=True)
        integration = ApiClient.objects.create(name=f"bench-{tag}")
        try:
            key, raw = api_key_create(
                client=integration, name="bench", scopes=[Scope.READ, Scope.WRITE], rate_limit="1000000/s"
            )
            client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
            self._report_header(options)
            listing = self._listing(client, key, options)
            posting = self._posting(client, key, options)
            self._report("list 50 messages", listing)
            self._report("post a message (turn queued)", posting)
        finally:
            integration.conversation_links.all().delete()  # links only; conversations below
            Conversation.objects.filter(customer_id__startswith=f"bench-{tag}").delete()
            integration.delete()
            if temp_agent is not None:
                temp_agent.delete()

    def _conversation(self, key: Any, name: str) -> Any:
        return api_conversation_create(key=key, customer_id=name, customer_kind="user", channel="api")

    def _listing(self, client: Client, key: Any, options: dict[str, Any]) -> tuple[list[float], list[float]]:
        conversation = self._conversation(key, f"bench-{key.client.name[6:]}-list")
        with transaction.atomic():
            items_append(conversation=conversation, items=[
                {"kind": MessageKind.USER if n % 2 == 0 else MessageKind.ASSISTANT,
                 "text": f"Message {n}: " + "a few words of support conversation " * 4}
                for n in range(50)
            ])
        path = f"/api/v1/conversations/{conversation.pk}/messages?limit=50"

        def call() -> None:
            response = client.get(path)
            assert response.status_code == 200 and len(response.json()["results"]) == 50, response.content

        return self._measure(call, options)

    def _posting(self, client: Client, key: Any, options: dict[str, Any]) -> tuple[list[float], list[float]]:
        conversation = self._conversation(key, f"bench-{key.client.name[6:]}-post")
        path = f"/api/v1/conversations/{conversation.pk}/messages"
        counter = iter(range(10**9))

        def call() -> None:
            n = next(counter)
            response = client.post(
                path, {"text": f"Where is my order? (message {n})", "client_id": f"bench-{n}"},
                content_type="application/json",
            )
            assert response.status_code == 201 and response.json()["turn"]["status"] == "queued", response.content

        detached = nullcontext() if options["run_turns"] else mock.patch.object(engine, "dispatch", lambda _id: None)
        with detached:
            return self._measure(call, options)

    def _measure(self, call: Callable[[], None], options: dict[str, Any]) -> tuple[list[float], list[float]]:
        """Wall-clock and CPU milliseconds per request (CPU time shows the cost of a
        request apart from waiting for a busy machine's cores)."""
        for _ in range(options["warmup"]):
            call()
        wall, cpu = [], []
        for _ in range(options["requests"]):
            started, started_cpu = time.perf_counter(), time.thread_time()
            call()
            cpu.append((time.thread_time() - started_cpu) * 1000)
            wall.append((time.perf_counter() - started) * 1000)
        return wall, cpu

    def _report_header(self, options: dict[str, Any]) -> None:
        vendor = connection.vendor
        self.stdout.write(
            f"REST API latency, in process through the full Django stack ({vendor}, DEBUG={settings.DEBUG}, "
            f"{options['requests']} requests after {options['warmup']} warm-up, "
            f"engine {'attached' if options['run_turns'] else 'detached: turns stay queued'})"
        )
        load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
        self.stdout.write(f"machine: {os.cpu_count()} cores, load average {load}")
        self.stdout.write(
            f"{'scenario':<30}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}{'req/s':>7}"
            f"{'cpu p50':>9}{'cpu p99':>9}"
        )

    def _report(self, name: str, samples: tuple[list[float], list[float]]) -> None:
        wall, cpu = samples
        p50, p90, p99 = (_percentile(wall, f) for f in (0.5, 0.9, 0.99))
        rate = 1000 / statistics.mean(wall)
        self.stdout.write(
            f"{name:<30}{p50:>8.2f}{p90:>8.2f}{p99:>8.2f}{max(wall):>8.2f}{rate:>7.0f}"
            f"{_percentile(cpu, 0.5):>9.2f}{_percentile(cpu, 0.99):>9.2f}"
        )
