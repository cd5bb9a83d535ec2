"""The console's own tables: its custom permissions, and replays of recorded turns.

`ConsoleAccess` has no table; it only carries the permissions staff actions check
(reply, retry, take over...), so they can be granted to groups like any other. A
`Replay` is a re-run of a turn's recorded request against another agent, model or
instructions. It lives here, never in the conversation: replaying writes no Message or
Turn row and changes nothing a customer or the model will see.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from conversations.permissions import CONSOLE_PERMISSIONS


class ConsoleAccess(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(CONSOLE_PERMISSIONS.items())
        verbose_name = "console access"


class ReplayStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ReplayStop(models.TextChoices):
    ANSWERED = "answered", "The model answered in text"
    UNRECORDED_TOOL_CALL = "unrecorded_tool_call", "The model asked for a tool call the recording cannot answer"
    TOOL_ROUNDS = "tool_rounds", "Tool round limit reached"


class Replay(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    turn = models.ForeignKey("conversations.Turn", on_delete=models.CASCADE, related_name="replays")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    agent = models.ForeignKey(
        "conversations.Agent", null=True, blank=True, on_delete=models.SET_NULL,
        help_text="The agent whose provider, settings and tools the replay used.",
    )
    model = models.CharField(max_length=120)
    instructions = models.TextField(blank=True)
    overrides = models.JSONField(default=dict, blank=True, help_text="What differs from the recording.")
    requests = models.JSONField(default=list, blank=True, help_text="Every request body sent, in order.")
    status = models.CharField(max_length=10, choices=ReplayStatus.choices, default=ReplayStatus.RUNNING)
    stop_reason = models.CharField(max_length=24, choices=ReplayStop.choices, blank=True)
    answer = models.TextField(blank=True)
    tool_calls = models.JSONField(
        default=list, blank=True,
        help_text="Calls the model asked for: name, arguments, and the recorded output used.",
    )
    response_ids = models.JSONField(default=list, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=24, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["turn", "-created_at"], name="replay_turn_created")]

    def __str__(self) -> str:
        return f"Replay of {self.turn_id} ({self.status})"

    @property
    def is_stale(self) -> bool:
        """Still marked running long after any provider call could last: the process
        running it stopped. Shown as such instead of spinning forever."""
        limit = timedelta(minutes=10)
        return self.status == ReplayStatus.RUNNING and timezone.now() - self.created_at > limit
