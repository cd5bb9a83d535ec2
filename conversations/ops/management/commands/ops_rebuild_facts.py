"""`manage.py ops_rebuild_facts`: recompute the dashboard's read model from the turns.

Needed after turns arrive by a path that bypasses the turn services (a bulk import),
or after changing TIME_ZONE (facts store the local day). `--since` limits it to turns
created on or after a date.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand

from conversations.models import Turn
from conversations.ops.facts import midnight, turn_facts_rebuild


class Command(BaseCommand):
    help = "Recompute the operations dashboard's facts from the Turn rows."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", type=date.fromisoformat, help="Only turns created on or after this date.")

    def handle(self, *args: Any, **options: Any) -> None:
        turns = Turn.objects.all()
        if options["since"]:
            turns = turns.filter(created_at__gte=midnight(options["since"]))
        count = turn_facts_rebuild(turns=turns)
        self.stdout.write(f"Rebuilt facts for {count:,} finished turns.")
