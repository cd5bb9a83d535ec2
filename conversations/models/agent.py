"""`Agent`: what an Assistants-API "assistant" was (model, instructions, tools, limits)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ReasoningEffort(models.TextChoices):
    """The spec's `reasoning.effort` values; which ones a model accepts is in
    `conversations/agent/capabilities.py`. Blank sends none (the model's default)."""

    DEFAULT = "", "Model default (or not a reasoning model)"
    NONE = "none", "None (no reasoning; GPT-5.1 and later)"
    MINIMAL = "minimal", "Minimal (GPT-5, GPT-5 mini/nano)"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    XHIGH = "xhigh", "Extra high (GPT-5.2 and later, codex-max)"


class Agent(models.Model):
    name = models.CharField(max_length=120, unique=True)
    model = models.CharField(
        max_length=120,
        blank=True,
        help_text="Model name at the provider; blank uses the deployment default.",
    )
    instructions = models.TextField(blank=True)
    tools = models.JSONField(
        default=list, blank=True, help_text="Names of registry tools this agent may call."
    )
    temperature = models.FloatField(
        null=True,
        blank=True,
        help_text="Sent only to models that accept it (GPT-4.1/4o; GPT-5.1 and later only with "
        "reasoning effort none). Reasoning models such as GPT-5 mini refuse it: leave it blank.",
    )
    reasoning_effort = models.CharField(
        max_length=10,
        choices=ReasoningEffort.choices,
        blank=True,
        default="",
        help_text="Which values a model accepts depends on the model (checked at save). "
        "Reasoning models always get their encrypted reasoning back, whatever is chosen here.",
    )
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    model_capabilities = models.JSONField(
        default=dict,
        blank=True,
        help_text='Override what the platform knows about this model, e.g. {"reasoning": true, '
        '"efforts": ["low", "high"], "sampling": [], "phase": true, "context_window": 400000, '
        '"max_output_tokens": 128000}. Blank uses the built-in table.',
    )
    history_token_budget = models.PositiveIntegerField(
        default=8000, help_text="Tokens of conversation history sent with each request."
    )
    max_tool_rounds = models.PositiveSmallIntegerField(
        default=5, help_text="Model calls per turn that may request tools before giving up."
    )
    provider_base_url = models.URLField(
        blank=True, help_text="Override the deployment's OpenAI-compatible base URL."
    )
    provider_api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of an environment variable holding this agent's provider key "
        "(keys are never stored in the database).",
    )
    pii_redaction = models.BooleanField(
        default=False,
        verbose_name="Redact PII before the provider",
        help_text="Replace emails, phone numbers, card numbers (Luhn-checked), IBANs and the patterns "
        "below by placeholders such as <EMAIL_1> in everything sent to the model (history, the "
        "customer's message, tool outputs, knowledge passages, customer facts; not the instructions). "
        "Tools, customers and staff get the real values back.",
    )
    pii_patterns = models.JSONField(
        default=list,
        blank=True,
        verbose_name="Extra PII patterns",
        help_text='More values to redact, as regular expressions: [{"label": "ORDER_REF", "pattern": '
        '"ORD-[0-9]{6}"}] sends <ORDER_REF_1>. Labels are upper case; used only with redaction on.',
    )
    blocked_input_patterns = models.JSONField(
        default=list,
        blank=True,
        verbose_name="Blocked customer messages",
        help_text='Guardrail: a customer message matching one of these regular expressions (any case) '
        'is answered with the guardrail reply and never sent to the model: [{"label": "OFF_TOPIC", '
        '"pattern": "\\bcasino\\b"}]. The label is recorded in the turn audit.',
    )
    blocked_output_patterns = models.JSONField(
        default=list,
        blank=True,
        verbose_name="Blocked answers",
        help_text="Guardrail: an answer matching one of these is replaced by the guardrail reply before "
        "the customer sees it (streamed text is held back while it is checked).",
    )
    guardrail_reply = models.TextField(
        blank=True,
        help_text="What the customer is told when a guardrail refuses (blank: a polite default that "
        "offers a person).",
    )
    display_name = models.CharField(
        max_length=80, blank=True,
        help_text="The name customers see in the widget (beside answers and as its title). "
        "Blank shows the agent's name.",
    )
    avatar_url = models.URLField(
        blank=True, max_length=500,
        help_text="An http(s) image shown beside answers (square, at least 64 px). Blank shows "
        "the name's first letter. The embedding page's Content-Security-Policy must allow it (img-src).",
    )
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_agent"
            )
        ]

    def __str__(self) -> str:
        return self.name
