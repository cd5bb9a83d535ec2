"""Server-side SVG charts for the dashboard: no JavaScript, no external assets.

Charts scale to their container (a `viewBox`), take their colours of text and grid
lines from the admin's CSS variables (so the admin's dark mode works), and carry
`<title>` tooltips: hovering anywhere over a day shows that day's values. Every piece of
text is escaped; tool, agent and model names come from the database.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 215
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 26
BLUE, LIGHT_BLUE, AMBER, RED, GREEN, GREY = "#2f6f9f", "#8dbbd8", "#d08c00", "#c0392b", "#2e8b57", "#9aa5ae"

Number = float | int | Decimal


# --- formatting ------------------------------------------------------------------------
def fmt_int(value: Number | None) -> str:
    return "–" if value is None else f"{int(value):,}"


def fmt_compact(value: Number | None) -> str:
    """12.3k, 4.5M: for axis labels and tiles."""
    if value is None:
        return "–"
    v = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.1f}".rstrip("0").rstrip(".") + unit
    return f"{v:.2f}".rstrip("0").rstrip(".") if v % 1 else f"{int(v)}"


def fmt_money(value: Number | None) -> str:
    if value is None:
        return "–"
    v = float(value)
    return f"${v:,.2f}" if abs(v) >= 1 or v == 0 else f"${v:.4f}"


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def fmt_ms(value: Number | None) -> str:
    if value is None:
        return "–"
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{int(v)} ms"


def fmt_day(day: date) -> str:
    return f"{day:%b} {day.day}"


# --- geometry ---------------------------------------------------------------------------
def nice_step(span: float, divisions: int = 4) -> float:
    """A 1-2-2.5-5 step that splits `span` into about `divisions` parts."""
    if span <= 0:
        return 1.0
    raw = span / divisions
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Number | None]
    color: str
    kind: str = "line"  # line | bar (bars stack)
    dashed: bool = False


def _legend(series: Sequence[Series]) -> str:
    items = []
    for s in series:
        # SVG presentation attributes, not a style attribute: the page's CSP allows no inline CSS.
        if s.kind == "bar":
            mark = f'<rect x="0" y="0" width="14" height="10" rx="2" fill="{s.color}"/>'
        else:
            dash = ' stroke-dasharray="3 2"' if s.dashed else ""
            mark = f'<line x1="0" y1="5" x2="14" y2="5" stroke="{s.color}" stroke-width="2"{dash}/>'
        items.append(
            f'<span class="ops-key"><svg class="ops-key-mark" width="14" height="10" aria-hidden="true">'
            f'{mark}</svg>{escape(s.name)}</span>'
        )
    return f'<div class="ops-legend">{"".join(items)}</div>'


def time_chart(
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    fmt: Callable[[Any], str],
    *,
    axis_fmt: Callable[[Any], str] | None = None,
    min_top: float = 0.0,
    note: str = "",
) -> SafeString:
    """Bars (stacked) and lines over days, on one y axis starting at 0."""
    axis_fmt = axis_fmt or fmt
    n = max(1, len(days))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bars = [s for s in series if s.kind == "bar"]
    lines = [s for s in series if s.kind == "line"]
    stacked = [sum(float(s.values[i] or 0) for s in bars) for i in range(len(days))]
    peaks = stacked + [float(v) for s in lines for v in s.values if v is not None]
    peak = max([min_top, *peaks]) if peaks else min_top
    step = nice_step(peak or 1.0)
    top = step * max(1, math.ceil(peak / step)) if peak else step * 4

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * (value / top)

    def x(index: int) -> float:
        return LEFT + slot * index + slot / 2

    parts = [
        f'<svg class="ops-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'preserveAspectRatio="xMidYMid meet">'
    ]
    tick = 0.0
    while tick <= top + step / 1000:
        parts.append(
            f'<line class="ops-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="ops-axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{escape(axis_fmt(tick))}</text>'
        )
        tick += step
    label_every = max(1, math.ceil(n / 8))
    for i, day in enumerate(days):
        if i % label_every == 0:
            parts.append(
                f'<text class="ops-axis" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(fmt_day(day))}</text>'
            )
    bar_w = max(1.0, slot * 0.72)
    for i in range(len(days)):
        base = 0.0
        for s in bars:
            value = float(s.values[i] or 0)
            if value <= 0:
                continue
            top_y, bottom_y = y(base + value), y(base)
            parts.append(
                f'<rect x="{x(i) - bar_w / 2:.1f}" y="{top_y:.1f}" width="{bar_w:.1f}" '
                f'height="{max(0.5, bottom_y - top_y):.1f}" fill="{s.color}"/>'
            )
            base += value
    for s in lines:
        runs: list[list[str]] = [[]]
        for i, point in enumerate(s.values):
            if point is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(float(point)):.1f}")
        dash = ' stroke-dasharray="5 4"' if s.dashed else ""
        for run in runs:
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.color}" stroke-width="2"'
                    f' stroke-linejoin="round"{dash}/>'
                )
            if n <= 45 or len(run) == 1:
                radius = 2.6 if n <= 45 else 2
                parts.extend(
                    f'<circle cx="{pt.split(",")[0]}" cy="{pt.split(",")[1]}" r="{radius}" fill="{s.color}"/>'
                    for pt in run
                )
    for i, day in enumerate(days):  # hover targets, drawn last so they sit on top
        lines_text = "\n".join(f"{s.name}: {fmt(s.values[i])}" for s in series)
        parts.append(
            f'<rect class="ops-hover" x="{LEFT + slot * i:.1f}" y="{TOP}" width="{slot:.1f}" height="{plot_h}">'
            f"<title>{escape(f'{day:%a %d %b %Y}')}\n{escape(lines_text)}</title></rect>"
        )
    parts.append("</svg>")
    note_html = f'<p class="ops-note">{escape(note)}</p>' if note else ""
    return mark_safe(
        f'<figure class="ops-chart"><figcaption><h3>{escape(title)}</h3>{_legend(series)}</figcaption>'
        f'{"".join(parts)}{note_html}</figure>'
    )


def tool_chart(title: str, rows: Sequence[Any]) -> SafeString:
    """Horizontal bars: calls per tool, the failed share in red, with the error rate."""
    if not rows:
        return mark_safe(
            f'<figure class="ops-chart"><figcaption><h3>{escape(title)}</h3></figcaption>'
            '<p class="ops-empty">No tool calls in this range.</p></figure>'
        )
    label_w, text_w = 140, 175
    # Few tools get taller rows, so the chart keeps the height of its neighbours.
    row_h = max(30, min(46, (HEIGHT - TOP - 4) // len(rows)))
    bar_h = min(22, row_h - 10)
    height = TOP + row_h * len(rows) + 4
    bar_space = WIDTH - label_w - text_w - RIGHT
    most = max(r.calls for r in rows) or 1
    parts = [f'<svg class="ops-svg" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">']
    for i, r in enumerate(rows):
        top = TOP + i * row_h
        ok_w = bar_space * (r.calls - r.errors) / most
        err_w = bar_space * r.errors / most
        summary = f"{fmt_int(r.calls)} calls · {fmt_pct(r.error_rate)} errors"
        parts.append(
            f'<g><title>{escape(r.tool)}: {escape(summary)}</title>'
            f'<text class="ops-label" x="{label_w - 8}" y="{top + 5 + bar_h / 2 + 4:.1f}" text-anchor="end">{escape(r.tool[:22])}</text>'
            f'<rect x="{label_w}" y="{top + 5}" width="{max(0.5, ok_w):.1f}" height="{bar_h}" fill="{BLUE}"/>'
            f'<rect x="{label_w + ok_w:.1f}" y="{top + 5}" width="{err_w:.1f}" height="{bar_h}" fill="{RED}"/>'
            f'<text class="ops-label" x="{label_w + ok_w + err_w + 6:.1f}" y="{top + 5 + bar_h / 2 + 4:.1f}">{escape(summary)}</text></g>'
        )
    parts.append("</svg>")
    legend = _legend([Series("Succeeded", [], BLUE, "bar"), Series("Failed", [], RED, "bar")])
    return mark_safe(
        f'<figure class="ops-chart"><figcaption><h3>{escape(title)}</h3>{legend}</figcaption>{"".join(parts)}</figure>'
    )


def dashboard_charts(data: Any) -> dict[str, SafeString]:
    """Every chart of the dashboard, from `dashboard.DashboardData`."""
    days = [d.day for d in data.days]
    per_day = data.days
    uncached = [d.input_tokens - d.cached_tokens for d in per_day]
    return {
        "volume": time_chart(
            "Conversations and turns per day",
            days,
            [
                Series("Turns", [d.turns for d in per_day], LIGHT_BLUE, "bar"),
                Series("Conversations", [d.conversations for d in per_day], BLUE),
            ],
            fmt_int,
            axis_fmt=fmt_compact,
        ),
        "failures": time_chart(
            "Failure rate",
            days,
            [Series("Failed turns", [d.failure_rate for d in per_day], RED)],
            fmt_pct,
            axis_fmt=lambda v: f"{v * 100:g}%",
            min_top=0.05,
            note="Failed ÷ (completed + failed) turns.",
        ),
        "latency": time_chart(
            "Turn latency",
            days,
            [
                Series("p50", [d.latency.get(50) for d in per_day], BLUE),
                Series("p95", [d.latency.get(95) for d in per_day], AMBER, dashed=True),
            ],
            fmt_ms,
            axis_fmt=lambda v: f"{v / 1000:g} s",
            note="Completed turns, start to end.",
        ),
        "ttft": time_chart(
            "Time to first token",
            days,
            [
                Series("p50", [d.ttft.get(50) for d in per_day], BLUE),
                Series("p95", [d.ttft.get(95) for d in per_day], AMBER, dashed=True),
            ],
            fmt_ms,
            axis_fmt=lambda v: f"{v / 1000:g} s",
        ),
        "tokens": time_chart(
            "Tokens per day",
            days,
            [
                Series("Input (uncached)", uncached, BLUE, "bar"),
                Series("Input (cached)", [d.cached_tokens for d in per_day], LIGHT_BLUE, "bar"),
                Series("Output", [d.output_tokens for d in per_day], AMBER, "bar"),
            ],
            fmt_int,
            axis_fmt=fmt_compact,
        ),
        "cost": time_chart(
            "Cost per day",
            days,
            [Series("Cost", [d.cost for d in per_day], GREEN, "bar")],
            fmt_money,
            axis_fmt=lambda v: f"${fmt_compact(v)}",
            note="From the price table in settings (SUPPORT_PRICES_JSON).",
        ),
        "outcomes": time_chart(
            "Handoffs and resolution without a human",
            days,
            [
                Series("Resolved without a human", [d.ai_resolution_rate for d in per_day], GREEN),
                Series("Handed off", [d.handoff_rate for d in per_day], AMBER),
            ],
            fmt_pct,
            axis_fmt=lambda v: f"{v * 100:g}%",
            min_top=1.0,
            note="Share of the day's new conversations.",
        ),
        "tools": tool_chart("Top tools", data.tools),
    }
