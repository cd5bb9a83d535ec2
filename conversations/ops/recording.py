"""The one hook the turn services call when a turn ends: `record_turn_finished(turn)`.

Called where a turn's final status is saved (completed, failed, cancelled, lease
expired), inside that transaction. It writes the dashboard's fact row in the same
transaction, so the read model commits or rolls back with the ending, and schedules the
Prometheus observations for after the commit.
"""

from __future__ import annotations

from typing import Any

from conversations.ops.facts import turn_fact_record
from conversations.ops.metrics import observe_turn_finished


def record_turn_finished(turn: Any) -> None:
    """Precondition: `turn`'s final status and audit are saved in the current transaction.
    The turn services end turns with conditional UPDATEs and may hold only the fields
    they wrote, so the row is read back once here."""
    from conversations.models import Turn

    turn = Turn.objects.get(pk=turn.pk)
    turn_fact_record(turn)
    observe_turn_finished(turn)
