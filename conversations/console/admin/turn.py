"""The turn list (find failures across conversations), the turn audit page, replays,
and the log of staff actions."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import path, reverse
from django.utils.html import format_html

from conversations.console.admin.base import ConsoleModelAdmin
from conversations.console.views import turn as views
from conversations.models import StaffAction, Turn


@admin.register(Turn)
class TurnAdmin(ConsoleModelAdmin):
    list_display = (
        "created_at", "status_badge", "conversation_link", "attempt", "trigger", "error_code",
        "model", "latency_ms", "cost",
    )
    list_select_related = ("conversation",)
    list_filter = ("status", "error_code", "trigger", ("created_at", admin.DateFieldListFilter))
    search_fields = ("id",)
    search_help_text = "A turn id or a conversation id."
    ordering = ("-created_at",)
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request: Any) -> QuerySet:
        return super().get_queryset(request).defer(
            "requests", "history", "partial_text", "response_ids", "error_message"
        )

    def get_search_results(self, request: Any, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            value = uuid.UUID(term)
        except ValueError:
            return queryset.none(), False
        return queryset.filter(pk=value) | queryset.filter(conversation_id=value), False

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Turn) -> str:
        return format_html('<span class="cs-turn cs-turn-{}">{}</span>', obj.status, obj.get_status_display())

    @admin.display(description="Conversation")
    def conversation_link(self, obj: Turn) -> str:
        conversation = obj.conversation
        url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
        label = conversation.customer_name or conversation.customer_email or conversation.customer_id
        return format_html('<a href="{}">{}</a>', url, label)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        own = [
            path("<uuid:turn_id>/replay/", wrap(self.replay_create_view), name="conversations_turn_replay_create"),
            path("<uuid:turn_id>/replay/<uuid:replay_id>/", wrap(self.replay_view), name="conversations_turn_replay"),
        ]
        return own + super().get_urls()

    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        return views.audit_page(self, request, object_id)

    def replay_create_view(self, request: Any, turn_id: Any) -> Any:
        return views.replay_create(self, request, turn_id)

    def replay_view(self, request: Any, turn_id: Any, replay_id: Any) -> Any:
        return views.replay_page(self, request, turn_id, replay_id)


@admin.register(StaffAction)
class StaffActionAdmin(ConsoleModelAdmin):
    """Who retried, took over, replied, resolved: read-only."""

    list_display = ("created_at", "actor", "action", "conversation_link", "detail")
    list_select_related = ("actor", "conversation")
    list_filter = ("action", ("created_at", admin.DateFieldListFilter))
    ordering = ("-created_at",)
    show_full_result_count = False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.display(description="Conversation")
    def conversation_link(self, obj: StaffAction) -> str:
        conversation = obj.conversation
        url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
        return format_html('<a href="{}">{}</a>', url, conversation.customer_id)
