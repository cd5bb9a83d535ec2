"""The agent admin: superusers edit agents; staff with view permission read them and,
with the try-it permission, talk to them in the panel on the agent's page.

Tools are chosen from the tool registry, with each tool's JSON schema shown. The
default flag moves from agent to agent through `agent_save`, so there is always at
most one default.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from django import forms
from django.contrib import admin
from django.urls import path
from django.utils.html import format_html_join

from conversations.agent.capabilities import capabilities_for
from conversations.agent.provider import is_offline
from conversations.authorization import Action, allowed, principal_of
from conversations.conf import platform_setting
from conversations.console.admin.base import SuperuserManagedAdmin
from conversations.console.agents import agent_save, agent_settings_problems
from conversations.console.selectors import pretty_json
from conversations.console.views import agent as views
from conversations.models import Agent
from tools.registry import registry


class AgentForm(forms.ModelForm):
    tools = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Registry tools this agent may call. Their schemas are listed below.",
    )
    provider_base_url = forms.URLField(
        required=False, assume_scheme="https", label="Provider base URL",
        help_text=Agent._meta.get_field("provider_base_url").help_text,
    )
    avatar_url = forms.URLField(
        required=False, assume_scheme="https", label="Avatar URL", max_length=500,
        help_text=Agent._meta.get_field("avatar_url").help_text,
    )
    make_default = forms.BooleanField(
        required=False, label="Default agent",
        help_text="New conversations use the default agent. Ticking this moves the flag here.",
    )

    class Meta:
        model = Agent
        exclude = ("is_default",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = registry()
        choices = [(name, f"{name} — {tool.description[:90]}") for name, tool in sorted(known.items())]
        current = list(self.instance.tools or []) if self.instance.pk else []
        choices += [(name, f"{name} (not in the registry)") for name in current if name not in known]
        cast(forms.MultipleChoiceField, self.fields["tools"]).choices = choices
        self.fields["tools"].initial = current
        self.fields["make_default"].initial = bool(self.instance.pk and self.instance.is_default)

    def clean_tools(self) -> list[str]:
        return list(self.cleaned_data.get("tools") or [])

    def clean(self) -> dict[str, Any]:
        """Refuse settings the model cannot take and invalid PII patterns (the same checks
        `agent_save` makes)."""
        super().clean()
        cleaned = self.cleaned_data  # what ModelForm.clean returns
        probe = copy.copy(self.instance)  # the instance gets the form's values only after clean()
        for name in ("model", "temperature", "reasoning_effort", "max_output_tokens", "history_token_budget",
                     "model_capabilities", "pii_patterns", "blocked_input_patterns", "blocked_output_patterns"):
            if name in cleaned:
                setattr(probe, name, cleaned[name])
        for name, message in agent_settings_problems(probe).items():
            self.add_error(name if name in self.fields else None, message)
        return cleaned


@admin.register(Agent)
class AgentAdmin(SuperuserManagedAdmin):
    form = AgentForm
    list_display = ("name", "model_display", "tool_list", "history_token_budget", "max_tool_rounds", "is_default")
    list_filter = ("is_default",)
    search_fields = ("name", "model")
    readonly_fields = ("tool_schemas", "provider_status", "default_flag", "model_capabilities_summary")
    fieldsets = (
        (None, {"fields": ("name", "make_default", "model", "provider_status", "instructions")}),
        ("Shown to customers", {"fields": ("display_name", "avatar_url")}),
        ("Tools", {"fields": ("tools", "tool_schemas")}),
        ("Limits and sampling", {
            "description": "What the model accepts is checked at save against the capability table "
            "(shown below): reasoning models such as GPT-5 mini take no temperature, GPT-5.1 and later "
            "take one only with effort none, and each family has its own effort values.",
            "fields": (
                "history_token_budget", "max_tool_rounds", "max_output_tokens", "temperature", "reasoning_effort",
                "model_capabilities_summary", "model_capabilities",
            ),
        }),
        ("Privacy", {
            "description": "With redaction on, the model sees placeholders such as <EMAIL_1> instead of the "
            "values; each turn's audit shows the request as sent and which kinds were redacted.",
            "fields": ("pii_redaction", "pii_patterns"),
        }),
        ("Guardrails", {
            "description": "Refused messages are never sent to the model; refused answers are replaced "
            "before the customer sees them. Each refusal is in the turn's audit with its label.",
            "fields": ("blocked_input_patterns", "blocked_output_patterns", "guardrail_reply"),
        }),
        ("Provider", {"classes": ("collapse",), "fields": ("provider_base_url", "provider_api_key_env")}),
    )
    change_form_template = "admin/conversations/agent/change_form.html"

    class Media:
        css = {"all": ["console/console.css"]}

    def get_fieldsets(self, request: Any, obj: Any = None) -> Any:
        if self.has_change_permission(request, obj):
            return self.fieldsets
        # The read-only view shows the stored flag (the form field is edit-only).
        first = (None, {"fields": ("name", "default_flag", "model", "provider_status", "instructions")})
        return (first, *self.fieldsets[1:])

    def save_model(self, request: Any, obj: Agent, form: Any, change: bool) -> None:
        agent_save(agent=obj, make_default=form.cleaned_data.get("make_default", False))

    @admin.display(description="Model")
    def model_display(self, obj: Agent) -> str:
        return obj.model or "(deployment default)"

    @admin.display(description="Tools")
    def tool_list(self, obj: Agent) -> str:
        return ", ".join(obj.tools or []) or "—"

    @admin.display(description="Default agent")
    def default_flag(self, obj: Agent) -> str:
        return "Yes: new conversations use this agent." if obj.is_default else "No"

    @admin.display(description="Provider")
    def provider_status(self, obj: Agent) -> str:
        if obj.pk is None:
            return "—"
        if is_offline(obj):
            return "No provider key configured: this agent answers with the built-in offline demo model."
        return f"Provider key configured ({obj.provider_base_url or 'deployment base URL'})."

    @admin.display(description="What the model accepts")
    def model_capabilities_summary(self, obj: Agent) -> str:
        model = obj.model or platform_setting("DEFAULT_MODEL")
        try:
            row = capabilities_for(model, obj.model_capabilities or None)
        except (TypeError, ValueError) as exc:
            return f"Invalid override: {exc}"
        kind = f"reasoning (efforts {', '.join(row.efforts)}; default {row.default_effort or 'none sent'})" \
            if row.reasoning else "not a reasoning model"
        sampling = ", ".join(row.sampling) or "none"
        if row.sampling and row.sampling_efforts:
            sampling += f" (only with effort {', '.join(row.sampling_efforts)})"
        known = f"table row {row.prefix!r}" if row.prefix else "not in the table: the safe default for unknown models"
        return (
            f"{model}: {kind}; sampling parameters: {sampling}; phase: {'yes' if row.phase else 'no'}; "
            f"context {row.context_window:,} tokens, output up to {row.max_output_tokens:,} ({known})."
        )

    @admin.display(description="Tool schemas")
    def tool_schemas(self, obj: Agent) -> str:
        tools = sorted(registry().values(), key=lambda t: t.name)
        return format_html_join(
            "", '<details class="cs-schema"><summary><code>{}</code> — {}</summary><pre>{}</pre></details>',
            ((t.name, t.description, pretty_json(t.definition())) for t in tools),
        )

    # --- the try-it panel ------------------------------------------------------------
    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        extra = {**(extra_context or {}), "can_try": allowed(principal_of(request.user), Action.TRY_AGENT)}
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        own = [
            path("<int:agent_id>/try/", wrap(self.try_start_view), name="conversations_agent_try"),
            path("<int:agent_id>/try/<uuid:conversation_id>/messages/", wrap(self.try_message_view),
                 name="conversations_agent_try_message"),
            path("<int:agent_id>/try/<uuid:conversation_id>/items/", wrap(self.try_items_view),
                 name="conversations_agent_try_items"),
        ]
        return own + super().get_urls()

    def try_start_view(self, request: Any, agent_id: int) -> Any:
        return views.try_start(self, request, agent_id)

    def try_message_view(self, request: Any, agent_id: int, conversation_id: Any) -> Any:
        return views.try_message(self, request, agent_id, conversation_id)

    def try_items_view(self, request: Any, agent_id: int, conversation_id: Any) -> Any:
        return views.try_items(self, request, agent_id, conversation_id)
