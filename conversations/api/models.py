"""API access tables: integrations (API clients), their keys, and what they created.

An `ApiClient` is one integration (a company's backend, a mobile app, a partner). It
holds any number of `ApiKey`s, so a key can be rotated (issue a new one, revoke the
old) without the integration losing its conversations: conversations belong to the
client, recorded by `ClientConversation`, not to the key. A key stores only a SHA-256
digest of its secret (keys are 256-bit random, so a slow password hash buys nothing
and would cost every request); the full key is shown once, when it is created.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    READ = "read", "read: conversations, messages, turn summaries"
    WRITE = "write", "write: create conversations, post messages, retry/cancel, status, handoff"
    AUDIT = "audit", "audit: staff-level reads (full turn audits, internal notes)"
    ALL_CONVERSATIONS = "all_conversations", "all_conversations: every conversation, not only its own"


class ApiClient(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=120, help_text="What this key is for, e.g. 'billing backend'.")
    prefix = models.CharField(
        max_length=16, unique=True, editable=False, help_text="Public part of the key, used to find it."
    )
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    rate_limit = models.CharField(
        max_length=20,
        blank=True,
        help_text="Requests allowed, e.g. '600/min' or '20/s'. Blank uses the deployment default.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} (sk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class ClientConversation(models.Model):
    """Which integration created a conversation (its keys may read and write it)."""

    conversation = models.OneToOneField(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="api_client_link",
    )
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="conversation_links")
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["client", "conversation"], name="apikeys_client_conv")]

    def __str__(self) -> str:
        return f"{self.client} → {self.conversation_id}"
