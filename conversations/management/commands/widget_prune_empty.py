"""`manage.py widget_prune_empty [--older-than-hours 24] [--dry-run]`: delete widget
conversations nobody wrote in (`conversations.widget.cleanup`). Run it daily (cron or a
systemd timer, docs/widget.md#cleaning-up-empty-conversations)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from conversations.widget.cleanup import empty_widget_conversations_delete


class Command(BaseCommand):
    help = "Delete empty widget conversations older than --older-than-hours (default 24)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-hours", type=float, default=24.0)
        parser.add_argument("--dry-run", action="store_true", help="Only count them.")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["older_than_hours"]
        if hours < 0:
            self.stderr.write("--older-than-hours must not be negative.")
            raise SystemExit(2)
        count = empty_widget_conversations_delete(older_than=timedelta(hours=hours), dry_run=options["dry_run"])
        verb = "would delete" if options["dry_run"] else "deleted"
        self.stdout.write(f"{verb} {count} empty widget conversation(s) older than {hours:g} h")
