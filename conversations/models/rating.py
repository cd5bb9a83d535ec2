"""`CsatRating`: a customer's 1-5 satisfaction rating of one resolution of their
conversation, with an optional comment. A conversation resolved, reopened and resolved
again may be rated again (each resolution once); `Conversation.resolution` numbers
them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Handled(models.TextChoices):
    AI = "ai", "AI only"
    HUMAN = "human", "Human-handled"


class CsatRating(models.Model):
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="ratings"
    )
    # The conversation's `resolution` when it was rated: which resolution this rates.
    resolution = models.PositiveIntegerField()
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, default="")
    # Who handled it, decided when it was rated: "human" if a staff member replied in
    # the conversation, and then the last one who did (the dashboard's "by person").
    handled = models.CharField(max_length=8, choices=Handled.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="csat_created")]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "resolution"], name="csat_one_per_resolution"),
            models.CheckConstraint(condition=models.Q(score__gte=1, score__lte=5), name="csat_score_1_5"),
        ]

    def __str__(self) -> str:
        return f"{self.score}/5"
