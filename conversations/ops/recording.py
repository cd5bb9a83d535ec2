"""What ops does when a turn ends: `record_turn_finished(turn)`, connected to the core's
`conversations.observers.turn_finished` hook by `OpsConfig.ready`.

The services call the hook where a turn's final status is saved (completed, failed,
cancelled, lease expired), inside that transaction. It writes the dashboard's fact row in the same
transaction, so the read model commits or rolls back with the ending, and schedules the
Prometheus observations for after the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.observers import FINISHED_TURN_FIELDS
from conversations.ops.facts import tool_outcomes_of, turn_fact_record
from conversations.ops.metrics import observe_turn_finished

if TYPE_CHECKING:
    from conversations.models import Turn


def on_turn_finished(turn: Turn, stored: list[Any] | None) -> None:
    """The `turn_finished` observer: `stored` is the items the ending stored, if any."""
    record_turn_finished(turn, tools=tool_outcomes_of(stored) if stored is not None else None)


def record_turn_finished(turn: Turn, *, tools: list[tuple[str, bool]] | None = None) -> None:
    """Precondition: `turn`'s final status and audit are saved in the current transaction,
    and `turn` holds them: a row read back, or an instance carrying every field of
    `FINISHED_TURN_FIELDS` as written. A field it loaded lazily (deferred) is read
    back here in one narrow query, never the whole audit row. `tools`: the tool
    outcomes of the items the ending stored, if the caller has them."""
    deferred = turn.get_deferred_fields() & set(FINISHED_TURN_FIELDS)
    if deferred:
        turn.refresh_from_db(fields=sorted(deferred))
    turn_fact_record(turn, tools=tools, ending=True)
    observe_turn_finished(turn)
