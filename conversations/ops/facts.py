"""Writing the dashboard's read model (`TurnFact`, `ToolCallFact`) from `Turn` rows.

`turn_fact_record` runs inside the transaction that ends a turn; `turn_facts_rebuild`
recomputes facts from the turns already in the database (after an import, a time zone
change, or on the first migration) in batches.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from typing import Any

from django.apps import apps as global_apps
from django.utils import timezone

from conversations.models import Message, Turn
from conversations.ops.models import ToolCallFact, TurnFact
from conversations.services.prepared import rows_insert

BATCH = 2000
_TURN_COLUMNS = (
    "pk", "conversation_id", "agent_id", "created_at", "model", "status", "error_code", "latency_ms",
    "time_to_first_token_ms", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost",
)
FINISHED = ("completed", "failed", "cancelled")


def local_day(moment: datetime) -> date:
    """The date of `moment` in the site's time zone (settings.TIME_ZONE)."""
    return moment.astimezone(timezone.get_default_timezone()).date()


def midnight(day: date) -> datetime:
    """The aware moment `day` starts in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), timezone.get_default_timezone())


def _fact_fields(row: dict[str, Any], tools: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "conversation_id": row["conversation_id"],
        "agent_id": row["agent_id"],
        "created_at": row["created_at"],
        "day": local_day(row["created_at"]),
        "model": row["model"] or "",
        "status": str(row["status"]),
        "error_code": str(row["error_code"] or ""),
        "latency_ms": row["latency_ms"],
        "ttft_ms": row["time_to_first_token_ms"],
        "input_tokens": row["input_tokens"] or 0,
        "cached_tokens": row["cached_tokens"] or 0,
        "output_tokens": row["output_tokens"] or 0,
        "reasoning_tokens": row["reasoning_tokens"] or 0,
        "cost": row["cost"] or 0,
        "tool_calls": len(tools),
        "tool_errors": sum(1 for _, ok in tools if not ok),
    }


def tool_outcome(name: Any, metadata: Any) -> tuple[str, bool]:
    """One tool call's fact from its stored function output: (tool, ok)."""
    return (name or "unknown", not (isinstance(metadata, dict) and metadata.get("ok") is False))


def tool_outcomes_of(messages: Iterable[Any]) -> list[tuple[str, bool]]:
    """The tool calls among items just stored (their function outputs), in order."""
    return [tool_outcome(m.tool_name, m.metadata) for m in messages if m.kind == "function_output"]


def _tool_outcomes(message_model: Any, turn_ids: Iterable[Any]) -> dict[Any, list[tuple[str, bool]]]:
    """Tool calls of the given turns, from their stored function outputs (a failed turn
    stores none, so only answered turns have tool facts)."""
    found: dict[Any, list[tuple[str, bool]]] = {}
    rows = message_model.objects.filter(turn_id__in=list(turn_ids), kind="function_output").values_list(
        "turn_id", "tool_name", "metadata"
    )
    for turn_id, name, metadata in rows:
        found.setdefault(turn_id, []).append(tool_outcome(name, metadata))
    return found


# The fact columns an upsert rewrites when the row already exists.
_FACT_UPDATE_FIELDS = (
    "conversation", "agent", "created_at", "day", "model", "status", "error_code", "latency_ms", "ttft_ms",
    "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost", "tool_calls", "tool_errors",
)


def turn_fact_record(turn: Turn, *, tools: list[tuple[str, bool]] | None = None, ending: bool = False) -> None:
    """Write (or rewrite) the fact row of a turn that just ended.

    `tools` are the turn's tool outcomes when the caller has them (the items it just
    stored, `tool_outcomes_of`); otherwise they are read from its stored outputs.
    `ending=True` says this runs in the transaction that moved the turn to its final
    status: a turn ends once and facts exist only for ended turns, so no tool facts
    of it can exist yet and none are looked for. The fact row itself is an upsert
    either way, so even a fact that somehow existed can never fail the ending.
    Precondition: the turn's ending is saved in the current transaction."""
    row = {name: getattr(turn, name) for name in _TURN_COLUMNS}
    if turn.status != "completed":
        tools = []
    elif tools is None:
        tools = _tool_outcomes(Message, [turn.pk]).get(turn.pk, [])
    fact = TurnFact(turn_id=turn.pk, **_fact_fields(row, tools))
    # One statement (INSERT ... ON CONFLICT DO UPDATE), no savepoints, built once
    # (`bulk_create(update_conflicts=True)` built it on every turn).
    rows_insert([fact], conflict=("turn", _FACT_UPDATE_FIELDS))
    if not ending:
        ToolCallFact.objects.filter(turn_fact_id=turn.pk).delete()
    if tools:
        rows_insert([ToolCallFact(turn_fact_id=turn.pk, day=fact.day, tool=name[:100], ok=ok) for name, ok in tools])


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def turn_facts_rebuild(*, apps: Any = None, turns: Any = None) -> int:
    """Recompute the facts of finished turns (all, or the `turns` queryset). Returns how
    many. `apps` is a migration's app registry when called from a migration."""
    registry = apps or global_apps
    turn_model = registry.get_model("conversations", "Turn")
    message_model = registry.get_model("conversations", "Message")
    fact_model = registry.get_model("ops", "TurnFact")
    tool_model = registry.get_model("ops", "ToolCallFact")
    queryset = turns if turns is not None else turn_model.objects.all()
    rows = queryset.filter(status__in=FINISHED).values(*_TURN_COLUMNS).iterator(chunk_size=BATCH)
    count = 0
    for batch in _batches(rows, BATCH):
        ids = [row["pk"] for row in batch]
        fact_model.objects.filter(turn_id__in=ids).delete()
        outcomes = _tool_outcomes(message_model, [row["pk"] for row in batch if row["status"] == "completed"])
        facts = [
            fact_model(turn_id=row["pk"], **_fact_fields(row, outcomes.get(row["pk"], []))) for row in batch
        ]
        fact_model.objects.bulk_create(facts)
        tool_model.objects.bulk_create(
            tool_model(turn_fact_id=fact.turn_id, day=fact.day, tool=name[:100], ok=ok)
            for fact in facts
            for name, ok in outcomes.get(fact.turn_id, [])
        )
        count += len(facts)
    return count
