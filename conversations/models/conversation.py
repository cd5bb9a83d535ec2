"""`Conversation`: one customer's thread with an agent, with status and running totals."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models


class Channel(models.TextChoices):
    WIDGET = "widget", "Web widget"
    API = "api", "API"
    IMPORTED = "imported", "Imported"
    PLAYGROUND = "playground", "Staff playground"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    WAITING_ON_STAFF = "waiting_on_staff", "Waiting on staff"
    RESOLVED = "resolved", "Resolved"


class CustomerKind(models.TextChoices):
    VISITOR = "visitor", "Anonymous visitor"
    USER = "user", "External user id"


class Conversation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey("conversations.Agent", on_delete=models.PROTECT)
    customer_kind = models.CharField(
        max_length=10, choices=CustomerKind.choices, default=CustomerKind.VISITOR
    )
    customer_id = models.CharField(max_length=255, db_index=True)
    customer_email = models.EmailField(blank=True)
    customer_name = models.CharField(max_length=200, blank=True)
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.API)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    ai_paused = models.BooleanField(default=False)
    metadata = models.JSONField(default=dict, blank=True)
    external_id = models.CharField(
        max_length=255, blank=True, default="", help_text="Id in the system it was imported from."
    )
    # Seq allocation counter; the row is locked while a seq is taken so seqs are gap-free.
    next_seq = models.PositiveIntegerField(default=1, editable=False)
    # The highest seq a staff member has had in front of them (the console's live view
    # was open): the widget shows the customer's messages up to it as read.
    staff_read_seq = models.PositiveIntegerField(default=0, editable=False)
    # How many times it has been resolved (`conversation_set_status`): a customer rates
    # each resolution once (`CsatRating.resolution`).
    resolution = models.PositiveIntegerField(default=0, editable=False)
    # The latest rating's score, for the staff list's column and filter (ratings service).
    csat_score = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    # Denormalised for the staff list, kept by the message services.
    message_count = models.PositiveIntegerField(default=0)
    last_message_preview = models.CharField(max_length=200, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    has_failed_turn = models.BooleanField(default=False)
    turn_count = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["status", "-updated_at"], name="conv_status_updated"),
            models.Index(fields=["agent", "-updated_at"], name="conv_agent_updated"),
            models.Index(fields=["customer_id", "-updated_at"], name="conv_customer_updated"),
            models.Index(fields=["-updated_at"], name="conv_updated"),
            models.Index(fields=["has_failed_turn", "-updated_at"], name="conv_failed_updated"),
            models.Index(fields=["channel", "external_id"], name="conv_external"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} · {self.get_status_display()}"
