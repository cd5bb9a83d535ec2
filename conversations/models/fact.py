"""`CustomerFact`: a durable fact about one conversation's customer (an order's details
from a tool, what the assistant or staff promised, what the customer already tried, or
what staff wrote down), sent with every turn in a small section of its own."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FactSource(models.TextChoices):
    TOOL = "tool", "Tool result"
    PROMISE = "promise", "Promise"
    TRIED = "tried", "Already tried"
    NOTE = "note", "Staff note"
    STAFF = "staff", "Staff"


class CustomerFact(models.Model):
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="facts"
    )
    text = models.TextField()
    source = models.CharField(max_length=10, choices=FactSource.choices)
    # What a later item of the same kind replaces (a tool's result for the same
    # arguments); empty for facts that are never replaced automatically.
    key = models.CharField(max_length=200, blank=True, default="")
    message = models.ForeignKey(
        "conversations.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The staff member who wrote or last edited it; automatic updates leave edited facts alone.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "created_at"], name="customerfact_conv")]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "key"], condition=~models.Q(key=""), name="customerfact_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.text[:80]
