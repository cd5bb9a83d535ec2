"""Admin for API access: integrations and their keys.

Creating a key shows the full key once, on the page that answers the save, and never
again (only its digest is stored; the page is not cached and the key never passes
through the session or messages). Keys are revoked, not deleted, so the audit of who
created which conversation keeps its key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from conversations.api.keys import api_key_issue, api_key_revoke
from conversations.api.models import ApiClient, ApiKey, Scope

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups
from conversations.ratelimit import parse_rate


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ, Scope.WRITE]
    )

    class Meta:
        model = ApiKey
        fields = ["client", "name", "scopes", "rate_limit", "expires_at"]

    def clean_rate_limit(self) -> str:
        rate = self.cleaned_data.get("rate_limit", "").strip()
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return rate


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    readonly_fields = ["name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"]
    fields = [*readonly_fields]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [ApiKeyInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["name", "client", "display_prefix", "scopes", "created_at", "last_used_at", "state"]
    list_filter = ["client", "revoked_at"]
    search_fields = ["name", "prefix", "client__name"]
    actions = ["revoke"]
    readonly_fields = ["display_prefix", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Key")
    def display_prefix(self, obj: ApiKey) -> str:
        return f"sk_{obj.prefix}_…" if obj.prefix else "—"

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked_at:
            return "revoked"
        return "active" if obj.is_active else "expired"

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> _FieldGroups:
        if obj is None:
            return ["client", "name", "scopes", "rate_limit", "expires_at"]
        return ["client", "name", "display_prefix", "scopes", "rate_limit", "expires_at",
                "created_by", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        # The client a key belongs to is fixed once issued (its conversations are the client's).
        return [*self.readonly_fields, "client"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.created_by = request.user  # type: ignore[assignment]  # the admin serves signed-in staff only
        obj._raw_key = api_key_issue(key=obj)  # type: ignore[attr-defined]  # shown once by response_add

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        raw = getattr(obj, "_raw_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "key": obj,
            "raw_key": raw,
            "title": "API key created",
        }
        response = TemplateResponse(request, "admin/apikeys/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {len(keys)} key(s).", messages.SUCCESS)
