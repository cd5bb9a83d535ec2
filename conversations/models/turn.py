"""`Turn`: one attempt at answering one user message; the audit and retry unit.

A turn records the exact requests sent to the provider, the history it selected and
why, the provider's response ids, usage, latency, and how it ended. Retrying creates a
new Turn (attempt + 1) for the same user message, so every attempt stays in the audit.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db import models


class AttemptAudit(TypedDict, total=False):
    """One attempt's audit as the agent hands it to the services that finish a turn
    (`turn_complete`, `turn_fail`, `turn_finish_cancelled`): the plan's part
    (`TurnPlan.audit`) and the run's (`TurnProgress.audit`). They store the keys that
    are Turn columns and add the usage to the conversation's totals. Every key may be
    missing: a turn that failed before it had a plan has an empty audit."""

    # the plan's
    history: list[dict[str, Any]]
    history_budget: int
    history_tokens: int
    model: str
    capabilities: dict[str, Any]  # the model's capability row; no Turn column stores it
    # the run's
    requests: list[dict[str, Any]]
    response_ids: list[str]
    rounds: list[dict[str, Any]]
    partial_text: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost: Decimal
    tool_rounds: int
    time_to_first_token_ms: int | None
    latency_ms: int
    redactions: dict[str, Any]  # PII redaction: {"enabled": True, "kinds": {kind: counts}}
    guardrails: list[dict[str, str]]  # refusals: [{"stage", "guard", "action", "label"}]


class TurnStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (TurnStatus.COMPLETED, TurnStatus.FAILED, TurnStatus.CANCELLED)


class TurnError(models.TextChoices):
    PROVIDER_ERROR = "provider_error", "Provider error"
    RATE_LIMITED = "rate_limited", "Provider rate limit"
    TIMEOUT = "timeout", "Provider timeout"
    CONNECTION = "connection", "Provider unreachable"
    STREAM_INTERRUPTED = "stream_interrupted", "Stream ended without a terminal event"
    RESPONSE_FAILED = "response_failed", "Provider reported the response failed"
    INCOMPLETE = "incomplete", "Response incomplete"
    CONTEXT_LENGTH = "context_length", "Context length exceeded"
    TOOL_ROUNDS = "tool_rounds", "Tool round limit reached"
    INTERRUPTED = "interrupted", "Worker stopped (lease expired)"
    BUDGET = "budget", "Budget limit reached"
    INTERNAL = "internal", "Internal error"


class TurnTrigger(models.TextChoices):
    CUSTOMER = "customer", "Customer message"
    STAFF_RETRY = "staff_retry", "Staff retry"
    API_RETRY = "api_retry", "API retry"
    CUSTOMER_RETRY = "customer_retry", "Customer retry"
    HANDBACK = "handback", "Handed back to AI"
    IMPORTED = "imported", "Imported run"  # an Assistants API run brought in as history


class Turn(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="turns"
    )
    user_message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, related_name="turns"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries"
    )
    trigger = models.CharField(
        max_length=16, choices=TurnTrigger.choices, default=TurnTrigger.CUSTOMER
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=10, choices=TurnStatus.choices, default=TurnStatus.QUEUED
    )
    error_code = models.CharField(max_length=24, choices=TurnError.choices, blank=True)
    error_message = models.TextField(blank=True)
    agent = models.ForeignKey("conversations.Agent", on_delete=models.PROTECT)
    model = models.CharField(max_length=120, blank=True)
    # The audit: every request body sent (one per model round), exactly as sent.
    requests = models.JSONField(default=list, blank=True)
    history = models.JSONField(
        default=list,
        blank=True,
        help_text="Selected history items: seq, kind, tokens, reason, score.",
    )
    history_budget = models.PositiveIntegerField(default=0)
    history_tokens = models.PositiveIntegerField(default=0)
    response_ids = models.JSONField(default=list, blank=True)
    rounds = models.JSONField(
        default=list,
        blank=True,
        help_text="Per model round: response id, every HTTP attempt (status, request id, "
        "error; the SDK's retries included), usage with cached tokens, where a cut stream "
        "stopped, and commentary the model streamed.",
    )
    redactions = models.JSONField(
        default=dict,
        blank=True,
        help_text="PII redaction: which kinds were replaced by placeholders in the requests "
        "and how often (distinct values, replacements); never the values. Empty when off.",
    )
    guardrails = models.JSONField(
        default=list,
        blank=True,
        help_text="Guardrail refusals of this attempt: the stage (input: the customer's message, "
        "never sent; output: the model's answer, replaced), the guard and the rule's label.",
    )
    partial_text = models.TextField(
        blank=True, help_text="Text streamed before a failure; never shown as an answer."
    )
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    tool_rounds = models.PositiveSmallIntegerField(default=0)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    lease_owner = models.CharField(max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            models.Index(fields=["conversation", "status", "created_at"], name="turn_conv_status"),
            models.Index(fields=["status", "lease_expires_at"], name="turn_status_lease"),
            models.Index(fields=["status", "created_at"], name="turn_status_created"),
            models.Index(fields=["created_at"], name="turn_created"),
        ]

    def __str__(self) -> str:
        return f"Turn {self.id} ({self.status}, attempt {self.attempt})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES
