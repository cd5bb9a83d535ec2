"""`StaffAction`: who did what to a conversation (retry, takeover, reply, resolve...)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffAction(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="staff_actions"
    )
    turn = models.ForeignKey("conversations.Turn", null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=40)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["conversation", "-created_at"], name="staffaction_conv")]

    def __str__(self) -> str:
        return f"{self.actor} {self.action}"
