"""The dashboard's selectors: everything the page shows, aggregated in SQL.

Turn figures come from the narrow `TurnFact` read model, conversation figures from
`Conversation`. Days are local dates in the site's time zone. Percentiles are exact
nearest-rank values (the smallest value with at least p% of values at or below it),
each one an index walk (`ORDER BY ... LIMIT 1 OFFSET k` on `(day, status, value)`,
walking from the nearer end), all of them sent as one statement of scalar subqueries;
this works the same on SQLite and PostgreSQL and costs a few index steps per value
rather than a sort per day.

Definitions shown on the page:
- failure rate: failed / (completed + failed) turns; cancelled turns are neither;
- latency and time to first token: completed turns only;
- handed off: the conversation reached a person: a handoff by the AI or a budget limit
  (`handoff_reason`), a staff handoff, takeover or reply (`StaffAction`), or it is
  waiting on staff / AI-paused now;
- resolved without a human: not handed off, the AI took at least one turn, and no
  customer message's latest attempt failed (so every message got an AI answer);
- CSAT: the customers' 1-5 ratings given in the range, their count and average, AI-only
  vs human-handled (a staff member replied), and by the staff member who last replied
  (`conversations.services.ratings.rating_stats`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from conversations.models import Agent, Conversation, StaffAction
from conversations.models.conversation import Status
from conversations.ops.facts import midnight
from conversations.ops.models import ToolCallFact, TurnFact
from conversations.services.ratings import rating_stats

MAX_DAYS = 366
PERCENTILES = (50, 95)
SUBQUERIES_PER_STATEMENT = 200


@dataclass
class DayStats:
    day: date | None
    conversations: int = 0
    handed_off: int = 0
    ai_resolved: int = 0
    turns: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost: Decimal = Decimal("0")
    latency_n: int = 0
    ttft_n: int = 0
    latency: dict[int, int | None] = field(default_factory=dict)  # percentile -> ms
    ttft: dict[int, int | None] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float | None:
        decided = self.completed + self.failed
        return self.failed / decided if decided else None

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_off / self.conversations if self.conversations else None

    @property
    def ai_resolution_rate(self) -> float | None:
        return self.ai_resolved / self.conversations if self.conversations else None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class ToolStats:
    tool: str
    calls: int
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclass
class SlowTurn:
    turn_id: str
    conversation_id: str
    created_at: datetime
    agent: str
    model: str
    status: str
    error_code: str
    latency_ms: int
    ttft_ms: int | None
    url: str


@dataclass
class DashboardData:
    start: date
    end: date
    days: list[DayStats]
    totals: DayStats
    tools: list[ToolStats]
    slowest: list[SlowTurn]
    csat: dict[str, Any] = field(default_factory=dict)  # rating_stats for the range
    timings_ms: dict[str, float] = field(default_factory=dict)


def nearest_rank(count: int, percentile: int) -> int:
    """1-based rank of the `percentile`-th value among `count` sorted values."""
    return max(1, -(-count * percentile // 100))


def default_range(today: date | None = None, days: int = 30) -> tuple[date, date]:
    today = today or timezone.localdate()
    return today - timedelta(days=days - 1), today


def clamp_range(start: date, end: date) -> tuple[date, date]:
    """Order the dates and keep the range within MAX_DAYS (ending at `end`)."""
    if start > end:
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
    return start, end


def _turn_days(start: date, end: date, by_day: dict[date, DayStats]) -> None:
    rows = (
        TurnFact.objects.filter(day__gte=start, day__lte=end)
        .values("day")
        .annotate(
            turns=Count("pk"),
            completed=Count("pk", filter=Q(status="completed")),
            failed=Count("pk", filter=Q(status="failed")),
            cancelled=Count("pk", filter=Q(status="cancelled")),
            input_tokens=Sum("input_tokens"),
            cached_tokens=Sum("cached_tokens"),
            output_tokens=Sum("output_tokens"),
            reasoning_tokens=Sum("reasoning_tokens"),
            cost=Sum("cost"),
            latency_n=Count("latency_ms", filter=Q(status="completed")),
            ttft_n=Count("ttft_ms", filter=Q(status="completed")),
        )
        .order_by("day")
    )
    for row in rows:
        stats = by_day[row["day"]]
        for name, value in row.items():
            if name != "day":
                setattr(stats, name, value if value is not None else getattr(stats, name))
        # SQLite sums decimals as floats; keep the column's precision.
        stats.cost = Decimal(str(stats.cost)).quantize(Decimal("0.000001"))


def _handed_off() -> Q:
    """The conversation reached a person. Staff replies, takeovers and staff handoffs
    are all recorded as `StaffAction`s; the AI's handoffs leave `handoff_reason`."""
    staff = StaffAction.objects.filter(conversation=OuterRef("pk"), action__in=("handoff", "take_over", "reply"))
    return (
        Q(metadata__has_key="handoff_reason")
        | Q(ai_paused=True)
        | Q(status=Status.WAITING_ON_STAFF)
        | Q(Exists(staff))
    )


def _conversation_days(start: date, end: date, days: list[DayStats]) -> None:
    bounds = [midnight(start + timedelta(days=i)) for i in range(len(days) + 1)]
    # Local-day buckets as plain comparisons: portable, and right across DST changes.
    bucket = Case(
        *[When(created_at__lt=bound, then=Value(i)) for i, bound in enumerate(bounds[1:])],
        output_field=IntegerField(),
    )
    # Grouping by the two flags evaluates each (with its subquery) once per row.
    rows = (
        Conversation.objects.filter(created_at__gte=bounds[0], created_at__lt=bounds[-1])
        .annotate(
            bucket=bucket,
            handed_off=ExpressionWrapper(_handed_off(), output_field=BooleanField()),
            answered=ExpressionWrapper(Q(has_failed_turn=False) & Q(turn_count__gt=0), output_field=BooleanField()),
        )
        .values("bucket", "handed_off", "answered")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in rows:
        stats = days[row["bucket"]]
        stats.conversations += row["n"]
        if row["handed_off"]:
            stats.handed_off += row["n"]
        elif row["answered"]:
            stats.ai_resolved += row["n"]


def _percentiles(start: date, end: date, days: list[DayStats], totals: DayStats) -> None:
    """Fill every day's and the range's percentiles in as few statements as possible."""
    quote = connection.ops.quote_name
    table, day, status = quote(TurnFact._meta.db_table), quote("day"), quote("status")
    adapt = connection.ops.adapt_datefield_value
    wanted: list[tuple[str, list[Any], DayStats, str, int]] = []
    for stats in [*days, totals]:
        for column, attr, count in ((quote("latency_ms"), "latency", stats.latency_n), (quote("ttft_ms"), "ttft", stats.ttft_n)):
            for p in PERCENTILES:
                getattr(stats, attr)[p] = None
                if not count:
                    continue
                if stats.day is None:
                    where, params = f"{day} >= %s AND {day} <= %s", [adapt(start), adapt(end)]
                else:
                    where, params = f"{day} = %s", [adapt(stats.day)]
                rank = nearest_rank(count, p)
                # Walk from whichever end is nearer: p95 is 5% from the top.
                order, offset = ("ASC", rank - 1) if rank <= count - rank else ("DESC", count - rank)
                sql = (
                    f"(SELECT {column} FROM {table} WHERE {where} AND {status} = %s AND {column} IS NOT NULL "
                    f"ORDER BY {column} {order} LIMIT 1 OFFSET %s)"
                )
                wanted.append((sql, [*params, "completed", offset], stats, attr, p))
    with connection.cursor() as cursor:
        for i in range(0, len(wanted), SUBQUERIES_PER_STATEMENT):
            chunk = wanted[i : i + SUBQUERIES_PER_STATEMENT]
            cursor.execute(
                "SELECT " + ", ".join(sql for sql, *_ in chunk), [p for _, params, *_ in chunk for p in params]
            )
            for value, (_, _, stats, attr, p) in zip(cursor.fetchone(), chunk, strict=True):
                getattr(stats, attr)[p] = value


def _tools(start: date, end: date, limit: int = 12) -> list[ToolStats]:
    rows = (
        ToolCallFact.objects.filter(day__gte=start, day__lte=end)
        .values("tool")
        .annotate(calls=Count("pk"), errors=Count("pk", filter=Q(ok=False)))
        .order_by("-calls", "tool")[:limit]
    )
    return [ToolStats(tool=row["tool"], calls=row["calls"], errors=row["errors"]) for row in rows]


def turn_audit_url(turn_id: Any, conversation_id: Any) -> str:
    """Where a turn's audit lives: the Turn admin page when the console registers one,
    else the conversation's admin page, anchored at the turn."""
    try:
        return reverse("admin:conversations_turn_change", args=[turn_id])
    except NoReverseMatch:
        pass
    try:
        return reverse("admin:conversations_conversation_change", args=[conversation_id]) + f"#turn-{turn_id}"
    except NoReverseMatch:
        return ""


def _slowest(start: date, end: date, limit: int = 10) -> list[SlowTurn]:
    # Bounded by time rather than by day so the planner walks the latency index from the
    # top (stopping after `limit` rows) instead of sorting the whole range.
    facts = list(
        TurnFact.objects.filter(
            created_at__gte=midnight(start), created_at__lt=midnight(end + timedelta(days=1)), latency_ms__isnull=False
        ).order_by("-latency_ms")[:limit]
    )
    agents = dict(Agent.objects.filter(pk__in={f.agent_id for f in facts}).values_list("pk", "name"))
    return [
        SlowTurn(
            turn_id=str(f.turn_id),
            conversation_id=str(f.conversation_id),
            created_at=f.created_at,
            agent=agents.get(f.agent_id, ""),
            model=f.model,
            status=f.status,
            error_code=f.error_code,
            latency_ms=f.latency_ms or 0,
            ttft_ms=f.ttft_ms,
            url=turn_audit_url(f.turn_id, f.conversation_id),
        )
        for f in facts
    ]


def _add(totals: DayStats, stats: DayStats) -> None:
    for name in (
        "conversations", "handed_off", "ai_resolved", "turns", "completed", "failed", "cancelled",
        "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost", "latency_n", "ttft_n",
    ):
        setattr(totals, name, getattr(totals, name) + getattr(stats, name))


def dashboard_data(*, start: date, end: date) -> DashboardData:
    """Every figure of the dashboard for the local days `start`..`end` inclusive."""
    start, end = clamp_range(start, end)
    days = [DayStats(day=start + timedelta(days=i)) for i in range((end - start).days + 1)]
    by_day = {stats.day: stats for stats in days}
    timings: dict[str, float] = {}

    def timed(name: str, fn: Any, *args: Any) -> Any:
        began = time.perf_counter()
        result = fn(*args)
        timings[name] = round((time.perf_counter() - began) * 1000, 1)
        return result

    timed("turns_per_day", _turn_days, start, end, by_day)
    timed("conversations_per_day", _conversation_days, start, end, days)
    totals = DayStats(day=None)
    for stats in days:
        _add(totals, stats)
    timed("percentiles", _percentiles, start, end, days, totals)
    tools = timed("tools", _tools, start, end)
    slowest = timed("slowest_turns", _slowest, start, end)
    csat = timed("csat", lambda: rating_stats(since=midnight(start), until=midnight(end + timedelta(days=1))))
    return DashboardData(
        start=start, end=end, days=days, totals=totals, tools=tools, slowest=slowest, csat=csat,
        timings_ms=timings,
    )
