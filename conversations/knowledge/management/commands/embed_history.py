"""`manage.py embed_history`: the catch-up for semantic history retrieval. Embeds every
conversation item that has no vector for the configured model yet (after enabling
`SUPPORT_HISTORY_EMBEDDINGS`, switching models, or with the background step off)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from conversations.knowledge import history_semantic


class Command(BaseCommand):
    help = "Embed the conversation items that have no history embedding yet."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch", type=int, default=1000, help="items per batch (default 1000)")

    def handle(self, *args: Any, **options: Any) -> None:
        if history_semantic.history_embedder() is None:
            raise CommandError("SUPPORT_HISTORY_EMBEDDINGS is off (or 'provider' has no key): nothing to embed")
        total = 0
        while stored := history_semantic.embed_pending(limit=options["batch"]):
            total += stored
            self.stdout.write(f"{total} items embedded")
        self.stdout.write(f"done: {total} items embedded")
