"""Demo data the built-in tools act on: orders a customer can ask about."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class DemoOrder(models.Model):
    number = models.CharField(max_length=20, unique=True)
    customer_email = models.EmailField()
    customer_id = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="External user id, if known."
    )
    status = models.CharField(max_length=30, default="processing")
    items = models.JSONField(default=list)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0"))
    carrier = models.CharField(max_length=50, blank=True)
    tracking_number = models.CharField(max_length=60, blank=True)
    placed_at = models.DateTimeField()
    estimated_delivery = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["-placed_at"]

    def __str__(self) -> str:
        return f"Order {self.number}"
