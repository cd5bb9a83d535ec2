"""What the dashboard page shows besides charts: headline tiles, customer satisfaction,
the slowest turns and the daily figures table, formatted for display (the template only lays them out)."""

from __future__ import annotations

from typing import Any

from conversations.ops.charts import fmt_compact, fmt_day, fmt_int, fmt_money, fmt_ms, fmt_pct
from conversations.ops.dashboard import DashboardData, DayStats

DAILY_COLUMNS = (
    ("conversations", "Conversations"),
    ("turns", "Turns"),
    ("failed", "Failed"),
    ("failure_rate", "Failure rate"),
    ("latency_p50", "Latency p50"),
    ("latency_p95", "Latency p95"),
    ("ttft_p50", "TTFT p50"),
    ("ttft_p95", "TTFT p95"),
    ("input_tokens", "Input tokens"),
    ("cached_tokens", "Cached"),
    ("output_tokens", "Output tokens"),
    ("cost", "Cost"),
    ("handed_off", "Handed off"),
    ("ai_resolved", "Resolved without a human"),
)


def tiles(data: DashboardData) -> list[dict[str, str]]:
    t = data.totals
    return [
        {"label": "Conversations", "value": fmt_int(t.conversations), "sub": f"{fmt_int(t.turns)} turns"},
        {
            "label": "Failure rate",
            "value": fmt_pct(t.failure_rate),
            "sub": f"{fmt_int(t.failed)} failed · {fmt_int(t.cancelled)} cancelled",
            "tone": "bad" if (t.failure_rate or 0) >= 0.05 else "",
        },
        {"label": "Latency p50 / p95", "value": fmt_ms(t.latency.get(50)), "sub": f"p95 {fmt_ms(t.latency.get(95))}"},
        {"label": "First token p50 / p95", "value": fmt_ms(t.ttft.get(50)), "sub": f"p95 {fmt_ms(t.ttft.get(95))}"},
        {
            "label": "Tokens",
            "value": fmt_compact(t.tokens),
            "sub": f"{fmt_compact(t.input_tokens)} in · {fmt_compact(t.output_tokens)} out · "
            f"{fmt_pct(t.cached_tokens / t.input_tokens) if t.input_tokens else '–'} cached",
        },
        {
            "label": "Cost",
            "value": fmt_money(t.cost),
            "sub": f"{fmt_money(t.cost / t.conversations) if t.conversations else '–'} per conversation",
        },
        {"label": "Handed off", "value": fmt_pct(t.handoff_rate), "sub": f"{fmt_int(t.handed_off)} conversations"},
        {
            "label": "Resolved without a human",
            "value": fmt_pct(t.ai_resolution_rate),
            "sub": f"{fmt_int(t.ai_resolved)} conversations",
            "tone": "good",
        },
        {
            "label": "CSAT",
            "value": f"{data.csat['average']:.2f} / 5" if data.csat.get("count") else "–",
            "sub": f"{fmt_int(data.csat.get('count', 0))} ratings · AI only {_average(data.csat.get('ai'))} · "
            f"human {_average(data.csat.get('human'))}",
        },
    ]


def _average(summary: dict[str, Any] | None) -> str:
    return f"{summary['average']:.2f}" if summary and summary["count"] else "–"


def _csat_cell(summary: dict[str, Any]) -> str:
    if not summary["count"]:
        return "–"
    return f"{summary['average']:.2f} / 5 ({fmt_int(summary['count'])})"


def csat_rows(data: DashboardData) -> dict[str, Any]:
    """The CSAT section: the average (of 5) and count overall, AI-only vs human-handled,
    and one row per staff member (who last replied in the rated conversations)."""
    csat = data.csat
    return {
        "count": fmt_int(csat["count"]),
        "average": f"{csat['average']:.2f}" if csat["count"] else "–",
        "split": [("AI only", _csat_cell(csat["ai"])), ("Human-handled", _csat_cell(csat["human"]))],
        "people": [{"name": p["name"], "average": f"{p['average']:.2f}", "count": fmt_int(p["count"])}
                   for p in csat["by_person"]],
    }


def _cells(stats: DayStats) -> list[tuple[str, str]]:
    values: dict[str, Any] = {
        "conversations": fmt_int(stats.conversations),
        "turns": fmt_int(stats.turns),
        "failed": fmt_int(stats.failed),
        "failure_rate": fmt_pct(stats.failure_rate),
        "latency_p50": fmt_ms(stats.latency.get(50)),
        "latency_p95": fmt_ms(stats.latency.get(95)),
        "ttft_p50": fmt_ms(stats.ttft.get(50)),
        "ttft_p95": fmt_ms(stats.ttft.get(95)),
        "input_tokens": fmt_int(stats.input_tokens),
        "cached_tokens": fmt_int(stats.cached_tokens),
        "output_tokens": fmt_int(stats.output_tokens),
        "cost": fmt_money(stats.cost),
        "handed_off": fmt_int(stats.handed_off),
        "ai_resolved": fmt_int(stats.ai_resolved),
    }
    return [(key, values[key]) for key, _ in DAILY_COLUMNS]


def daily_rows(data: DashboardData) -> list[dict[str, Any]]:
    """Newest day first, then the range's totals."""
    rows = []
    for d in reversed(data.days):
        assert d.day is not None  # only the totals have no day
        rows.append({"day": d.day.isoformat(), "label": f"{d.day:%a} {fmt_day(d.day)}", "cells": _cells(d)})
    rows.append({"day": "total", "label": "Whole range", "cells": _cells(data.totals)})
    return rows


def slowest_rows(data: DashboardData) -> list[dict[str, Any]]:
    return [
        {
            "url": s.url,
            "turn": s.turn_id,
            "short": s.turn_id[:8],
            "when": s.created_at,
            "agent": s.agent,
            "model": s.model,
            "status": s.status,
            "error": s.error_code,
            "latency": fmt_ms(s.latency_ms),
            "ttft": fmt_ms(s.ttft_ms),
        }
        for s in data.slowest
    ]
