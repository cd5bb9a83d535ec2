"""`manage.py knowledge_reindex`: rebuild the full-text indexes of passages and
conversation items from their tables (after a restore, or rows written around the
services)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from conversations.knowledge.services import knowledge_reindex


class Command(BaseCommand):
    help = "Rebuild the knowledge-base and history full-text indexes from the tables."

    def handle(self, *args: Any, **options: Any) -> None:
        passages = knowledge_reindex()
        self.stdout.write(f"Reindexed {passages} passages of active documents and all conversation items.")
