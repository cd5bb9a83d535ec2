"""The dashboard's numbers match the database for a generated history, day by day,
in the site's time zone, on the page itself."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conversations.models import Conversation, Message, StaffAction, Turn
from conversations.ops.charts import fmt_int, fmt_money, fmt_ms, fmt_pct
from conversations.ops.dashboard import dashboard_data
from conversations.ops.models import TurnFact
from conversations.ops.sample_data import generate

pytestmark = pytest.mark.django_db


class DailyTable(HTMLParser):
    """Collects {day: {field: text}} from the page's #ops-daily table, plus hrefs."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, str]] = {}
        self.links: list[str] = []
        self._day: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-day"):
            self._day = a["data-day"]
            self.rows[self._day] = {}
        elif tag == "td" and self._day and a.get("data-field"):
            self._field = a["data-field"]
            self.rows[self._day][self._field] = ""
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._field = None
        elif tag == "tr":
            self._day = None

    def handle_data(self, data: str) -> None:
        if self._day and self._field:
            self.rows[self._day][self._field] += data.strip()


def nearest_rank(values: list[int], percentile: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-len(ordered) * percentile // 100)
    return ordered[max(1, rank) - 1]


def expected_figures(start, end) -> dict[Any, dict[str, Any]]:
    """Straight from the Turn and Conversation rows, in Python."""
    tz = timezone.get_default_timezone()

    def day_of(moment):
        return moment.astimezone(tz).date()

    days: dict[Any, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    latency, ttft = defaultdict(list), defaultdict(list)
    costs: dict[Any, Decimal] = defaultdict(Decimal)
    for t in Turn.objects.all():
        day = day_of(t.created_at)
        if not start <= day <= end:
            continue
        row = days[day]
        row["turns"] += 1
        row[t.status] += 1
        for name in ("input_tokens", "cached_tokens", "output_tokens"):
            row[name] += getattr(t, name)
        costs[day] += t.cost
        if t.status == "completed":
            if t.latency_ms is not None:
                latency[day].append(t.latency_ms)
            if t.time_to_first_token_ms is not None:
                ttft[day].append(t.time_to_first_token_ms)
    staff_touched = set(
        StaffAction.objects.filter(action__in=("handoff", "take_over", "reply")).values_list("conversation_id", flat=True)
    )
    took_turns = set(Turn.objects.values_list("conversation_id", flat=True))
    for c in Conversation.objects.all():
        day = day_of(c.created_at)
        if not start <= day <= end:
            continue
        row = days[day]
        row["conversations"] += 1
        handed = "handoff_reason" in c.metadata or c.ai_paused or c.status == "waiting_on_staff" or c.pk in staff_touched
        row["handed_off"] += handed
        row["ai_resolved"] += (not handed) and (not c.has_failed_turn) and c.pk in took_turns
    for day, row in days.items():
        row["cost"] = costs[day]
        row["latency"] = {50: nearest_rank(latency[day], 50), 95: nearest_rank(latency[day], 95)}
        row["ttft"] = {50: nearest_rank(ttft[day], 50), 95: nearest_rank(ttft[day], 95)}
    return days


@pytest.mark.parametrize("time_zone", ["UTC", "America/New_York"])
def test_dashboard_numbers_match_the_database(settings, time_zone):
    settings.TIME_ZONE = time_zone
    generate(turns=420, days=9, seed=11)
    # A staff takeover on a conversation the AI had answered moves it to "handed off".
    touched = Conversation.objects.filter(ai_paused=False, has_failed_turn=False).order_by("created_at").first()
    StaffAction.objects.create(conversation=touched, action="take_over")
    assert TurnFact.objects.count() == Turn.objects.count()

    end = timezone.localdate()
    start = end - timedelta(days=9)
    data = dashboard_data(start=start, end=end)
    expected = expected_figures(start, end)
    assert sum(row["turns"] for row in expected.values()) > 300

    total_turns = 0
    for stats in data.days:
        want = expected.get(stats.day, defaultdict(int))
        got = {
            "turns": stats.turns, "completed": stats.completed, "failed": stats.failed,
            "cancelled": stats.cancelled, "input_tokens": stats.input_tokens,
            "cached_tokens": stats.cached_tokens, "output_tokens": stats.output_tokens,
            "conversations": stats.conversations, "handed_off": stats.handed_off,
            "ai_resolved": stats.ai_resolved,
        }
        assert got == {key: want[key] for key in got}, stats.day
        assert stats.cost == want["cost"] if stats.turns else stats.cost == 0
        if stats.completed:
            assert stats.latency == want["latency"] and stats.ttft == want["ttft"], stats.day
        total_turns += stats.turns
    assert data.totals.turns == total_turns

    # Range-wide percentiles and tools, from the rows.
    in_range = [t for t in Turn.objects.filter(status="completed") if start <= timezone.localdate(t.created_at) <= end]
    assert data.totals.latency == {p: nearest_rank([t.latency_ms for t in in_range], p) for p in (50, 95)}
    outputs = Message.objects.filter(kind="function_output", turn__in=in_range)
    calls = defaultdict(lambda: [0, 0])
    for m in outputs:
        calls[m.tool_name][0] += 1
        calls[m.tool_name][1] += m.metadata.get("ok") is False
    assert {t.tool: [t.calls, t.errors] for t in data.tools} == dict(calls)

    # The page shows the same figures.
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client = Client()
    client.force_login(admin)
    response = client.get(f"/admin/ops/dashboard/?start={start}&end={end}")
    assert response.status_code == 200
    table = DailyTable()
    table.feed(response.content.decode())
    for stats in data.days:
        want = expected.get(stats.day)
        row = table.rows[stats.day.isoformat()]
        if want is None:
            assert row["turns"] == "0"
            continue
        decided = want["completed"] + want["failed"]
        assert row["turns"] == fmt_int(want["turns"])
        assert row["conversations"] == fmt_int(want["conversations"])
        assert row["failure_rate"] == fmt_pct(want["failed"] / decided if decided else None)
        assert row["latency_p95"] == fmt_ms(want["latency"][95])
        assert row["ttft_p50"] == fmt_ms(want["ttft"][50])
        assert row["cost"] == fmt_money(want["cost"])
        assert row["handed_off"] == fmt_int(want["handed_off"])
    assert table.rows["total"]["turns"] == fmt_int(total_turns)

    slowest = max(in_range + [t for t in Turn.objects.exclude(status="completed")], key=lambda t: t.latency_ms or 0)
    assert any(str(slowest.pk) in link for link in table.links), "the slowest turn links to its audit"


def test_dashboard_needs_the_view_permission_and_handles_an_empty_range():
    User = get_user_model()
    staff = User.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/ops/dashboard/").status_code == 403

    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(boss)
    index = client.get("/admin/")
    assert b"/admin/ops/dashboard/" in index.content, "linked from the admin index"
    empty = client.get("/admin/ops/dashboard/?start=2001-01-01&end=2001-01-07")
    assert empty.status_code == 200
    assert b"No finished turns in this range." in empty.content
    bad = client.get("/admin/ops/dashboard/?start=yesterday")
    assert bad.status_code == 200 and b"Dates must look like" in bad.content


def test_rebuild_command_restores_the_read_model_from_the_turns():
    from io import StringIO

    from django.core.management import call_command

    from conversations.ops.models import ToolCallFact

    generate(turns=60, days=3, seed=2)
    before = sorted(TurnFact.objects.values_list("turn_id", "status", "latency_ms", "cost", "tool_calls", "day"))
    tools_before = ToolCallFact.objects.count()
    TurnFact.objects.all().delete()
    assert ToolCallFact.objects.count() == 0
    out = StringIO()
    call_command("ops_rebuild_facts", stdout=out)
    assert "Rebuilt facts for 60 finished turns." in out.getvalue()
    after = sorted(TurnFact.objects.values_list("turn_id", "status", "latency_ms", "cost", "tool_calls", "day"))
    assert after == before and ToolCallFact.objects.count() == tools_before > 0
