"""`manage.py bench_import`: how fast conversations import from files, on this database.

Generates synthetic histories (Chat Completions JSONL and/or an Assistants export as
JSONL), imports them with the real importer, and prints messages per second for the
first import and for an idempotent re-run. Runs against the configured database
(`DATABASE_URL`; migrate it first) and removes what it imported unless `--keep`.

    manage.py bench_import --messages 100000
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from conversations.importers.models import ImportedConversation
from conversations.importers.service import ImportOptions, conversations_import_files
from conversations.models import Agent, Conversation

AGENT_NAME = "Import benchmark"
PREFIX = "bench-"
_WORDS = ["order", "delivery", "refund", "parcel", "address", "invoice", "account", "password", "shipping", "tracking", "return", "exchange", "warranty", "payment", "card", "discount", "subscription", "cancel", "upgrade", "please", "could", "you", "check", "when", "will", "my", "arrive", "thanks", "the", "a", "is", "it", "for", "on", "with"]


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def _chat_lines(conversation: int, messages: int, rng: random.Random, start: int) -> list[dict[str, Any]]:
    key = f"{PREFIX}chat-{conversation}"
    lines: list[dict[str, Any]] = []
    clock = start
    while len(lines) < messages:
        clock += rng.randint(5, 90)
        base = {"conversation_id": key, "customer_id": f"customer-{conversation}", "created_at": clock}
        lines.append({**base, "role": "user", "content": _sentence(rng, rng.randint(6, 25))})
        if len(lines) % 10 == 1 and len(lines) + 2 < messages:
            call_id = f"call_{conversation}_{len(lines)}"
            lines.append({
                **base, "role": "assistant", "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": {
                    "name": "lookup_order", "arguments": json.dumps({"order_number": str(1000 + len(lines))})}}],
            })
            lines.append({**base, "role": "tool", "tool_call_id": call_id,
                          "content": json.dumps({"status": "shipped", "eta": "2 days"})})
        if len(lines) < messages:
            lines.append({**base, "role": "assistant", "content": _sentence(rng, rng.randint(15, 60))})
    return lines


def _assistant_lines(conversation: int, messages: int, rng: random.Random, start: int) -> list[dict[str, Any]]:
    thread_id = f"{PREFIX}thread_{conversation}"
    out: list[dict[str, Any]] = [
        {"id": thread_id, "object": "thread", "created_at": start, "tool_resources": None,
         "metadata": {"customer_id": f"customer-{conversation}"}}
    ]
    clock = start
    for index in range(messages):
        clock += rng.randint(5, 90)
        role = "user" if index % 2 == 0 else "assistant"
        out.append({
            "id": f"msg_{conversation}_{index}", "object": "thread.message", "created_at": clock,
            "thread_id": thread_id, "status": "completed", "incomplete_details": None,
            "completed_at": clock, "incomplete_at": None, "role": role,
            "content": [{"type": "text", "text": {"value": _sentence(rng, rng.randint(6, 50)), "annotations": []}}],
            "assistant_id": "asst_bench" if role == "assistant" else None,
            "run_id": f"run_{conversation}_{index}" if role == "assistant" else None,
            "attachments": [], "metadata": {},
        })
    return out


def _server_cpu_seconds() -> float:
    """CPU seconds used so far by this connection's PostgreSQL backend, when it runs on
    this machine (0 for SQLite, whose work is in this process's own CPU time)."""
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Command(BaseCommand):
    help = "Benchmark importing conversations from files; prints messages per second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--messages", type=int, default=100_000)
        parser.add_argument("--per-conversation", type=int, default=50)
        parser.add_argument("--format", choices=["chat", "assistants", "both"], default="both")
        parser.add_argument(
            "--writers", type=int, default=None, help="Writer threads (default: 2 on PostgreSQL, 1 on SQLite)."
        )
        parser.add_argument("--repeat", type=int, default=1, help="Runs per format (a row each).")
        parser.add_argument("--keep", action="store_true", help="Keep the imported conversations.")

    def handle(self, *args: Any, **options: Any) -> None:
        agent, _ = Agent.objects.get_or_create(name=AGENT_NAME, defaults={"model": "gpt-4o-mini"})
        formats = ["chat", "assistants"] if options["format"] == "both" else [options["format"]]
        writers = options["writers"] or (2 if connection.vendor == "postgresql" else 1)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        self.stdout.write(
            f"database: {connection.vendor} ({connection.settings_dict['NAME']}), {os.cpu_count()} CPUs, "
            f"load average {load}, DEBUG={settings.DEBUG}, writers={writers}"
        )
        self.stdout.write(
            f"{'format':<11}{'messages':>10}{'conversations':>15}{'seconds':>9}{'msg/s':>9}"
            f"{'cpu s':>8}{'db cpu s':>10}{'msg/cpu-s':>11}{'re-run s':>10}{'re-run msg/s':>14}"
        )
        for name in formats * options["repeat"]:
            self._clean()
            with tempfile.TemporaryDirectory() as tmp:
                path = self._generate(Path(tmp), name, options["messages"], options["per_conversation"])
                first = self._run(path, agent, writers)
                again = self._run(path, agent, writers)
            summary = first["summary"]
            if again["summary"]["messages_imported"]:
                raise CommandError("A re-run imported messages again.")
            self.stdout.write(
                f"{name:<11}{summary['messages_imported']:>10,}{summary['conversations_created']:>15,}"
                f"{first['seconds']:>9.2f}{summary['messages_imported'] / first['seconds']:>9,.0f}"
                f"{first['cpu']:>8.2f}{(format(first['db_cpu'], '.2f') if writers == 1 else '-'):>10}"
                f"{summary['messages_imported'] / (first['cpu'] + first['db_cpu']):>11,.0f}"
                f"{again['seconds']:>10.2f}{summary['messages_imported'] / again['seconds']:>14,.0f}"
            )
        if not options["keep"]:
            self._clean()
            agent.delete()

    def _generate(self, folder: Path, name: str, total: int, per: int) -> Path:
        rng = random.Random(7)
        make = _chat_lines if name == "chat" else _assistant_lines
        path = folder / f"{name}.jsonl"
        start = 1_700_000_000
        with path.open("w") as handle:
            for conversation in range((total + per - 1) // per):
                count = min(per, total - conversation * per)
                for line in make(conversation, count, rng, start + conversation * 3600):
                    handle.write(json.dumps(line) + "\n")
        return path

    def _run(self, path: Path, agent: Agent, writers: int) -> dict[str, Any]:
        db_cpu = _server_cpu_seconds()
        started, cpu = time.perf_counter(), time.process_time()
        report = conversations_import_files(
            paths=[path], options=ImportOptions(agent_name=agent.name, writers=writers)
        )
        result = report.as_dict()
        result["seconds"] = time.perf_counter() - started
        # CPU time spent on the import by this process and by its database server
        # process (measurable with one writer, whose connection is this thread's): on a
        # busy shared machine this is steadier than the wall clock.
        result["cpu"] = time.process_time() - cpu
        result["db_cpu"] = _server_cpu_seconds() - db_cpu
        if result["failed"]:
            raise CommandError(f"The benchmark import failed: {result['failed'][:3]}")
        return result

    def _clean(self) -> None:
        ids = ImportedConversation.objects.filter(external_id__startswith=PREFIX).values_list(
            "conversation_id", flat=True
        )
        Conversation.objects.filter(pk__in=list(ids)).delete()
