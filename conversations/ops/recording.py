"""The one hook the turn services call when a turn ends: `record_turn_finished(turn)`.

Called where a turn's final status is saved (completed, failed, cancelled, lease
expired), inside that transaction. It writes the dashboard's fact row in the same
transaction, so the read model commits or rolls back with the ending, and schedules the
Prometheus observations for after the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conversations.ops.facts import turn_fact_record
from conversations.ops.metrics import observe_turn_finished

if TYPE_CHECKING:
    from conversations.models import Turn

# The Turn fields the fact row and the metrics read.
FINISHED_TURN_FIELDS = (
    "id", "conversation_id", "agent_id", "created_at", "started_at", "model", "status", "error_code",
    "error_message", "latency_ms", "time_to_first_token_ms", "input_tokens", "cached_tokens", "output_tokens",
    "reasoning_tokens", "cost",
)


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
