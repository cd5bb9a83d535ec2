"""`Message`: one ordered item of a conversation (text, function call/output, note)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class MessageKind(models.TextChoices):
    USER = "user", "Customer"
    ASSISTANT = "assistant", "AI"
    FUNCTION_CALL = "function_call", "Function call"
    FUNCTION_OUTPUT = "function_output", "Function output"
    STAFF = "staff", "Staff"
    NOTE = "note", "Internal note"


# Kinds the customer sees and the model is sent; notes are for staff only.
CUSTOMER_VISIBLE_KINDS = (
    MessageKind.USER,
    MessageKind.ASSISTANT,
    MessageKind.FUNCTION_CALL,
    MessageKind.FUNCTION_OUTPUT,
    MessageKind.STAFF,
)


class Message(models.Model):
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    text = models.TextField(blank=True, help_text="Text, or a function call's output.")
    tool_name = models.CharField(max_length=100, blank=True)
    call_id = models.CharField(max_length=100, blank=True)
    tool_arguments = models.TextField(blank=True, help_text="JSON arguments as the model sent.")
    token_count = models.PositiveIntegerField(default=0)
    client_id = models.CharField(max_length=100, blank=True, default="")
    turn = models.ForeignKey(
        "conversations.Turn",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="produced_messages",
        help_text="The turn that produced this item (AI and tool items).",
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    external_id = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="message_client_id_unique",
            ),
            models.UniqueConstraint(
                fields=["conversation", "external_id"],
                condition=~Q(external_id=""),
                name="message_external_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["conversation", "kind", "seq"], name="msg_conv_kind_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"
