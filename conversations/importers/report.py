"""What an import did, for people and scripts: the JSON report and the terminal progress bar.

The report lists what was imported, skipped and failed, each with a reason, what was
imported but needs a look (warnings), ids read twice with different content (conflicts:
both origins and which copy won), threads whose order had to be inferred, and counts
what could not come along (placeholders for non-text content, tools that need an
implementation, notes such as skipped system messages). The progress bar is drawn on
stderr only when that is a terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from django.utils import timezone

from conversations.importers.records import AgentPlan, Conflict, Problem


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


class ImportReport:
    def __init__(self, *, source: str, dry_run: bool) -> None:
        self.source = source
        self.dry_run = dry_run
        self.started_at = timezone.now()
        self._started = time.monotonic()
        self.seconds = 0.0
        self.imported: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.conflicts: list[dict[str, Any]] = []
        self.placeholders: Counter[str] = Counter()
        self.notes: Counter[str] = Counter()
        self.tools_matched: set[str] = set()
        self.tools_needed: dict[str, list[str]] = {}  # tool -> assistants that used it
        self.knowledge_base: list[dict[str, str]] = []
        self.counts: Counter[str] = Counter()
        self.interrupted = False

    # --- recording ----------------------------------------------------------------------
    def problem(self, problem: Problem) -> None:
        self.failed.append(problem.as_dict())
        self.counts["failed"] += 1

    def warning(self, problem: Problem) -> None:
        """Imported, but worth a look (an orphan tool output, say)."""
        self.warnings.append(problem.as_dict())

    def conflict(self, conflict: Conflict) -> None:
        self.conflicts.append(conflict.as_dict())

    def knowledge_file(self, file_id: str, name: str, status: str, document_id: int | None) -> None:
        entry: dict[str, Any] = {"kind": "file", "id": file_id, "file": name, "document": document_id}
        if status == "created":
            entry["reason"] = "would import into the knowledge base" if self.dry_run else "imported into the knowledge base"
            self.imported.append(entry)
            self.counts["files"] += 1
        else:
            entry["reason"] = "already in the knowledge base"
            self.skipped.append(entry)

    def agent(self, plan: AgentPlan, status: str, agent_id: int | None) -> None:
        entry: dict[str, Any] = {"kind": "agent", "id": plan.assistant_id, "agent": agent_id, "name": plan.name}
        if status == "created":
            entry["reason"] = "would create agent" if self.dry_run else "created agent"
            entry["tools"] = plan.tools
            if plan.needs_implementation:
                entry["needs_implementation"] = plan.needs_implementation
            if plan.dropped:
                entry["not_carried_over"] = plan.dropped
            self.imported.append(entry)
            self.counts["agents_created"] += 1
        else:
            entry["reason"] = "already imported (left as it is)"
            self.skipped.append(entry)
        self.tools_matched.update(plan.tools)
        for name in plan.needs_implementation:
            self.tools_needed.setdefault(name, []).append(plan.assistant_id)
        for pointer in plan.knowledge_base:
            self.knowledge_base.append({"assistant": plan.assistant_id, "action": pointer})

    def conversation(
        self,
        *,
        external_id: str,
        status: str,
        conversation_id: str,
        items: int,
        messages: int,
        customer_id: str,
        placeholders: Counter[str],
        notes: Counter[str],
        runs: int = 0,
        order_inferred: str = "",
        api_client: str = "",
    ) -> None:
        entry: dict[str, Any] = {
            "kind": "conversation",
            "id": external_id,
            "conversation": conversation_id or None,
            "customer_id": customer_id,
        }
        if api_client:
            entry["api_client"] = api_client
        if order_inferred:
            entry["order_inferred"] = order_inferred
            self.counts["order_inferred"] += 1
        self.notes.update(notes)
        if status in ("unchanged", "empty"):
            entry["reason"] = "already imported, nothing new" if status == "unchanged" else "no messages to import"
            self.skipped.append(entry)
            self.counts[f"conversations_{status}"] += 1
            return
        self.placeholders.update(placeholders)
        entry["messages"] = messages
        entry["items"] = items
        would = "would be " if self.dry_run else ""
        entry["reason"] = (
            f"new conversation, {plural(messages, 'message')} {would}imported"
            if status == "created"
            else f"{plural(messages, 'new message')} {would}imported"
        )
        if runs:
            entry["runs"] = runs
            entry["reason"] += f", {plural(runs, 'run')} as imported turns"
            self.counts["runs"] += runs
        self.imported.append(entry)
        self.counts[f"conversations_{status}"] += 1
        self.counts["messages"] += messages
        self.counts["items"] += items

    # --- output -------------------------------------------------------------------------
    def finish(self) -> None:
        self.seconds = time.monotonic() - self._started

    def as_dict(self) -> dict[str, Any]:
        messages = self.counts["messages"]
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "started_at": self.started_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "summary": {
                "agents_created": self.counts["agents_created"],
                "conversations_created": self.counts["conversations_created"],
                "conversations_updated": self.counts["conversations_updated"],
                "conversations_unchanged": self.counts["conversations_unchanged"],
                "messages_imported": messages,
                "items_imported": self.counts["items"],
                "placeholders": sum(self.placeholders.values()),
                "skipped": len(self.skipped),
                "failed": len(self.failed),
                "runs_imported": self.counts["runs"],
                "files_imported": self.counts["files"],
                "conflicts": len(self.conflicts),
                "warnings": len(self.warnings),
                "order_inferred": self.counts["order_inferred"],
                "messages_per_second": round(messages / self.seconds) if self.seconds else None,
            },
            "placeholders": dict(sorted(self.placeholders.items())),
            "notes": dict(sorted(self.notes.items())),
            "tools": {
                "matched": sorted(self.tools_matched),
                "needs_implementation": self.tools_needed,
                "knowledge_base": self.knowledge_base,
            },
            "imported": self.imported,
            "skipped": self.skipped,
            "failed": self.failed,
            "warnings": self.warnings,
            "conflicts": self.conflicts,
        }


class Progress:
    """A one-line progress bar on a terminal; silent anywhere else."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = 0
        self.done = 0
        self.messages = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def start(self, total: int) -> None:
        self.total = total
        self._started = time.monotonic()
        self._draw(force=True)

    def advance(self, messages: int = 0) -> None:
        self.done += 1
        self.messages += messages
        self._draw()

    def finish(self) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        width = 30
        share = self.done / self.total if self.total else 1.0
        filled = int(width * share)
        elapsed = max(now - self._started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,} conversations"
            f"  {self.messages:,} messages  {self.messages / elapsed:,.0f} msg/s "
        )
        self.stream.flush()
