"""Prometheus metrics: what is recorded, the hooks that record it, and the exposition.

Ops observes; nothing below it imports it. `OpsConfig.ready` connects these to the hooks
of `conversations.observers`:

- `turn_finished` (the services that end a turn: complete, fail, cancel, lease expiry)
  runs `conversations.ops.recording.record_turn_finished`, which calls
  `observe_turn_finished` here.
  It counts the turn by agent, model, status and error, observes its latency and time to
  first token, adds its tokens and cost, and counts provider errors by kind. It records
  after the surrounding transaction commits, so a rolled-back ending is never counted.
- `tool_called` (`tools.registry.execute_calls`, per call) runs `record_tool_call`;
  `budget_stopped` (`conversations.agent.budgets`) runs `record_budget_stop`.
- `websocket_opened()` / `websocket_closed()` from the websocket consumer's connect and
  disconnect: the open-websockets gauge.

Queued and running turns are read from the database at scrape time (`TurnStateCollector`),
so they are right however many processes there are; so are the customers' CSAT ratings
(`RatingCollector`: `support_csat_ratings_total` by score and handled, ai or human), so
a restart or a second process never loses or doubles one.

Several daphne processes: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory, the same
one for every process, before they start (and empty it on each deploy). Each process then
writes its samples to files there and `/metrics`, answered by any of them, sums them
(`prometheus_client.multiprocess`). Without it, each process exports only its own samples.
"""

from __future__ import annotations

import logging
import os
import time
from decimal import Decimal
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from conversations.models import Agent, CsatRating, Handled, Turn
from conversations.models.turn import TurnStatus

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)
TTFT_BUCKETS = (0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 15)
TOOL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

# Turn endings that are the provider's fault, reported as provider errors by kind.
PROVIDER_ERROR_CODES = frozenset(
    {
        "provider_error",
        "rate_limited",
        "timeout",
        "connection",
        "stream_interrupted",
        "response_failed",
        "incomplete",
        "context_length",
    }
)

TURNS = Counter(
    "support_turns_finished",
    "Turns that finished, by agent, model, final status and error code.",
    ["agent", "model", "status", "error"],
)
TURN_LATENCY = Histogram(
    "support_turn_latency_seconds",
    "Time from a turn's start to its end.",
    ["agent", "status"],
    buckets=LATENCY_BUCKETS,
)
TURN_TTFT = Histogram(
    "support_turn_time_to_first_token_seconds",
    "Time from a turn's start to the first streamed text.",
    ["agent"],
    buckets=TTFT_BUCKETS,
)
TOKENS = Counter(
    "support_tokens",
    "Tokens used by turns; kind is input (includes cached), cached, output or reasoning.",
    ["agent", "model", "kind"],
)
COST = Counter("support_cost_usd", "Cost of turns in US dollars (from the price table).", ["agent", "model"])
TOOL_CALLS = Counter("support_tool_calls", "Tool calls made by the model, by tool and outcome.", ["tool", "outcome"])
TOOL_DURATION = Histogram(
    "support_tool_duration_seconds", "Time a tool call took.", ["tool"], buckets=TOOL_BUCKETS
)
PROVIDER_ERRORS = Counter(
    "support_provider_errors", "Turns failed by the model provider, by kind.", ["kind"]
)
BUDGET_STOPS = Counter(
    "support_budget_stops", "Turns stopped by a budget limit, by limit.", ["limit"]
)
WEBSOCKETS = Gauge(
    "support_websockets_open", "Open websocket connections.", multiprocess_mode="livesum"
)

_agent_names: dict[Any, tuple[str, float]] = {}
_AGENT_NAME_TTL = 60.0


def _agent_name(agent_id: Any) -> str:
    cached = _agent_names.get(agent_id)
    now = time.monotonic()
    if cached and cached[1] > now:
        return cached[0]
    name = Agent.objects.filter(pk=agent_id).values_list("name", flat=True).first() or str(agent_id)
    _agent_names[agent_id] = (name, now + _AGENT_NAME_TTL)
    return name


def observe_turn_finished(turn: Turn) -> None:
    """Count a turn that just ended, once the current transaction commits (at once
    outside a transaction)."""
    snapshot = {
        "turn_id": str(turn.pk),
        "conversation_id": str(turn.conversation_id),
        "agent_id": turn.agent_id,
        "model": turn.model or "",
        "status": str(turn.status),
        "error": str(turn.error_code or ""),
        "latency_ms": turn.latency_ms,
        "ttft_ms": turn.time_to_first_token_ms,
        "input_tokens": turn.input_tokens or 0,
        "cached_tokens": turn.cached_tokens or 0,
        "output_tokens": turn.output_tokens or 0,
        "reasoning_tokens": turn.reasoning_tokens or 0,
        "cost": Decimal(str(turn.cost or 0)),
        "started": turn.started_at is not None,
    }
    transaction.on_commit(lambda: _observe_turn(snapshot), robust=True)


def _observe_turn(t: dict[str, Any]) -> None:
    try:
        agent = _agent_name(t["agent_id"])
    except Exception:  # metrics must never break a turn's ending
        agent = str(t["agent_id"])
    TURNS.labels(agent, t["model"], t["status"], t["error"]).inc()
    if t["latency_ms"] is not None:
        TURN_LATENCY.labels(agent, t["status"]).observe(t["latency_ms"] / 1000)
    if t["ttft_ms"] is not None:
        TURN_TTFT.labels(agent).observe(t["ttft_ms"] / 1000)
    for kind in ("input", "cached", "output", "reasoning"):
        if t[f"{kind}_tokens"]:
            TOKENS.labels(agent, t["model"], kind).inc(t[f"{kind}_tokens"])
    if t["cost"]:
        COST.labels(agent, t["model"]).inc(float(t["cost"]))
    if t["error"] in PROVIDER_ERROR_CODES:
        PROVIDER_ERRORS.labels(t["error"]).inc()
    logger.info(
        "turn %s %s",
        t["turn_id"],
        t["status"],
        extra={
            "conversation_id": t["conversation_id"],
            "turn_id": t["turn_id"],
            "agent": agent,
            "model": t["model"],
            "status": t["status"],
            "error_code": t["error"] or None,
            "latency_ms": t["latency_ms"],
            "ttft_ms": t["ttft_ms"],
            "input_tokens": t["input_tokens"],
            "output_tokens": t["output_tokens"],
            "cost": str(t["cost"]),
        },
    )


def record_tool_call(name: str, ok: bool, seconds: float) -> None:
    """Count one tool call. The registry passes a name the model made up as `unknown`,
    so the model cannot create unbounded label values."""
    TOOL_CALLS.labels(name, "ok" if ok else "error").inc()
    TOOL_DURATION.labels(name).observe(seconds)


def record_budget_stop(limit: str) -> None:
    transaction.on_commit(lambda: BUDGET_STOPS.labels(limit).inc(), robust=True)


def websocket_opened() -> None:
    """Call from a websocket consumer once its connection is accepted."""
    WEBSOCKETS.inc()


def websocket_closed() -> None:
    """Call from a websocket consumer's disconnect, once per accepted connection."""
    WEBSOCKETS.dec()


class TurnStateCollector(Collector):
    """Queued and running turns, and the age of the oldest queued one, read from the
    database at scrape time (the truth for every process at once)."""

    def collect(self) -> Any:
        states = GaugeMetricFamily("support_turns_in_state", "Turns now queued or running.", labels=["status"])
        oldest = GaugeMetricFamily(
            "support_turn_queue_oldest_age_seconds", "Age of the oldest queued turn (0 when none)."
        )
        up = GaugeMetricFamily("support_metrics_database_up", "1 when the scrape could read the database.")
        try:
            rows = dict(
                Turn.objects.filter(status__in=[TurnStatus.QUEUED, TurnStatus.RUNNING])
                .values_list("status")
                .annotate(n=Count("pk"))
                .order_by()
            )
            first = Turn.objects.filter(status=TurnStatus.QUEUED).aggregate(m=Min("created_at"))["m"]
        except Exception:
            logger.warning("metrics could not read turn states", exc_info=True)
            close_old_connections()
            up.add_metric([], 0)
            yield up
            return
        for status in (TurnStatus.QUEUED, TurnStatus.RUNNING):
            states.add_metric([str(status)], rows.get(status, 0))
        oldest.add_metric([], (timezone.now() - first).total_seconds() if first else 0)
        up.add_metric([], 1)
        yield from (states, oldest, up)


class RatingCollector(Collector):
    """Customer ratings (CSAT) by score and by who handled the conversation, counted in
    the database at scrape time (one grouped count)."""

    def collect(self) -> Any:
        ratings = CounterMetricFamily(
            "support_csat_ratings", "Customer satisfaction ratings, by score (1-5) and handled (ai, human).",
            labels=["score", "handled"],
        )
        try:
            rows = {
                (score, handled): n for score, handled, n in
                CsatRating.objects.values_list("score", "handled").annotate(n=Count("pk")).order_by()
            }
        except Exception:
            logger.warning("metrics could not read ratings", exc_info=True)
            close_old_connections()
            return
        for handled in Handled.values:
            for score in range(1, 6):
                ratings.add_metric([str(score), handled], rows.get((score, handled), 0))
        yield ratings


def render_metrics() -> tuple[bytes, str]:
    """The exposition text for `/metrics` and its content type."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(TurnStateCollector())
    database.register(RatingCollector())
    return body + generate_latest(database), CONTENT_TYPE_LATEST
