"""Tables of the operations app: the dashboard's narrow read model and its admin entry.

`TurnFact` is one narrow row per finished turn (status, latency, time to first token,
tokens, cost, tool counts, and the local day it belongs to); `ToolCallFact` one row per
tool call of an answered turn. Both are written by `recording.record_turn_finished` in
the same transaction that ends the turn, so they never disagree with the `Turn` rows,
and rebuilt from them by `manage.py ops_rebuild_facts`. The dashboard reads these
instead of `Turn`, whose rows carry the full request audit and are too wide to scan:
over 100,000 turns the indexes below answer every chart, including exact per-day
percentiles, in a few index walks.

`Dashboard` is a proxy of `Turn` with no table: registering it gives the dashboard an
entry on the admin index ("Operations › Dashboard") and a permission
(`ops.view_dashboard`) that says which staff may see it, without overriding the admin
templates other parts of the console extend.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from conversations.models import Turn


class TurnFact(models.Model):
    turn = models.OneToOneField(
        "conversations.Turn", primary_key=True, on_delete=models.CASCADE, related_name="ops_fact"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    agent = models.ForeignKey("conversations.Agent", on_delete=models.CASCADE, related_name="+", db_index=False)
    created_at = models.DateTimeField()
    day = models.DateField(help_text="The turn's creation date in the site's time zone.")
    model = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=10)
    error_code = models.CharField(max_length=24, blank=True)
    latency_ms = models.PositiveIntegerField(null=True)
    ttft_ms = models.PositiveIntegerField(null=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    tool_calls = models.PositiveSmallIntegerField(default=0)
    tool_errors = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [
            # Per-day totals read this index alone (it covers them), and per-day latency
            # percentiles are a walk along it: the k-th value of one day.
            models.Index(
                fields=[
                    "day", "status", "latency_ms", "ttft_ms", "input_tokens", "cached_tokens",
                    "output_tokens", "reasoning_tokens", "cost",
                ],
                name="ops_fact_day_totals",
            ),
            models.Index(fields=["day", "status", "ttft_ms"], name="ops_fact_day_ttft"),
            # Range-wide percentiles: walk values in order, the day check stays in the index.
            models.Index(fields=["status", "latency_ms", "day"], name="ops_fact_latency_day"),
            models.Index(fields=["status", "ttft_ms", "day"], name="ops_fact_ttft_day"),
            # Slowest turns.
            models.Index(fields=["latency_ms", "day"], name="ops_fact_slowest"),
        ]

    def __str__(self) -> str:
        return f"{self.turn_id} {self.status}"


class ToolCallFact(models.Model):
    turn_fact = models.ForeignKey(TurnFact, on_delete=models.CASCADE, related_name="tool_call_facts")
    day = models.DateField()
    tool = models.CharField(max_length=100)
    ok = models.BooleanField()

    class Meta:
        indexes = [models.Index(fields=["day", "tool", "ok"], name="ops_toolfact_day")]

    def __str__(self) -> str:
        return f"{self.tool} {'ok' if self.ok else 'error'}"


class Dashboard(Turn):
    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
        default_permissions = ("view",)
