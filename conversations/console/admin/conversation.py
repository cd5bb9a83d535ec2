"""The conversation list and the conversation page.

The list reads only the conversation row and its agent (the message count, preview,
token and cost totals and the failed-turn flag are denormalised onto `Conversation` by
the services), so it costs the same few queries for ten conversations or a million.
Conversations waiting on staff come first, read through indexes by
`WaitingFirstPaginator` rather than by sorting every row. The conversation page replaces the admin's
change form: conversations change only through the services, via the console actions.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.urls import path
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timezone import localtime

from conversations.console.admin.base import ConsoleModelAdmin
from conversations.console.filters import (
    AIPausedFilter,
    ChannelFilter,
    FailedTurnFilter,
    LastActivityFilter,
    RatingFilter,
)
from conversations.console.pagination import WaitingFirstPaginator
from conversations.console.selectors import latest_failed_turns
from conversations.console.templatetags.console_tags import stars
from conversations.console.views import conversation as views
from conversations.errors import PlatformError
from conversations.models import Conversation, Message
from conversations.models.conversation import Status
from conversations.models.message import MessageKind
from conversations.models.turn import TurnTrigger
from conversations.services.conversations import conversation_set_status
from conversations.services.turns import turn_retry

SEARCHABLE_KINDS = (MessageKind.USER, MessageKind.ASSISTANT, MessageKind.STAFF, MessageKind.NOTE)


@admin.register(Conversation)
class ConversationAdmin(ConsoleModelAdmin):
    list_display = ("customer", "status_badge", "preview", "items", "usage", "rating", "last_activity")
    list_display_links = ("customer",)
    list_select_related = ("agent",)
    list_filter = (
        "status", "agent", ChannelFilter, ("updated_at", LastActivityFilter),
        ("has_failed_turn", FailedTurnFilter), ("ai_paused", AIPausedFilter), RatingFilter,
    )
    search_fields = ("customer_id",)  # replaced by get_search_results; shows the box
    search_help_text = (
        "An exact customer id or conversation id; or part of a customer's id, email or name, "
        "or of the text of the conversation."
    )
    list_per_page = 50
    show_full_result_count = False
    actions = ["retry_failed_turns", "resolve_conversations"]

    # --- list ------------------------------------------------------------------------
    def get_ordering(self, request: Any) -> list[Any]:
        waiting_first = Case(
            When(status=Status.WAITING_ON_STAFF, then=Value(0)), default=Value(1),
            output_field=IntegerField(),
        )
        return [waiting_first.asc(), "-updated_at"]

    def get_search_results(self, request: Any, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        exact = queryset.filter(customer_id=term)  # indexed: the common "find this customer"
        if exact.exists():
            return exact, False
        # One scan of the items for the text (not a subquery per conversation row).
        in_text = Message.objects.filter(kind__in=SEARCHABLE_KINDS, text__icontains=term).values("conversation_id")
        customer = (
            Q(customer_id__icontains=term) | Q(customer_email__icontains=term)
            | Q(customer_name__icontains=term)
        )
        return queryset.filter(customer | Q(pk__in=in_text)), False

    def get_paginator(self, request: Any, queryset: QuerySet, per_page: int, orphans: int = 0,
                      allow_empty_first_page: bool = True) -> Paginator:
        if request.GET.get(ORDER_VAR):  # a column header was clicked: its plain ordering
            return Paginator(queryset, per_page, orphans, allow_empty_first_page)
        return WaitingFirstPaginator(queryset, per_page, orphans, allow_empty_first_page)

    @admin.display(description="Customer", ordering="customer_id")
    def customer(self, obj: Conversation) -> str:
        """Who, with their id, the channel they came through and the agent answering."""
        name = obj.customer_name or obj.customer_email or obj.customer_id
        return format_html(
            '{}<div class="cs-sub">{} · {} · {}</div>', name, obj.customer_id, obj.get_channel_display(), obj.agent.name
        )

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: Conversation) -> str:
        """The status, with marks for a failed turn and a paused AI."""
        parts = [format_html('<span class="cs-status cs-status-{}">{}</span>', obj.status, obj.get_status_display())]
        if obj.has_failed_turn:
            parts.append(format_html('<span class="cs-mark cs-mark-failed" title="{}">failed turn</span>',
                                     "The latest attempt of a turn failed"))
        if obj.ai_paused:
            parts.append(format_html('<span class="cs-mark cs-mark-paused" title="{}">AI paused</span>',
                                     "A person took over; the AI does not answer"))
        return mark_safe("<br>".join(parts))  # each part escaped by format_html

    @admin.display(description="Last message")
    def preview(self, obj: Conversation) -> str:
        return Truncator(obj.last_message_preview).chars(90)

    @admin.display(description="Items", ordering="message_count")
    def items(self, obj: Conversation) -> str:
        return f"{obj.message_count:,}"

    @admin.display(description="Tokens · cost", ordering="cost")
    def usage(self, obj: Conversation) -> str:
        return format_html('{}<div class="cs-sub">${}</div>', f"{obj.input_tokens + obj.output_tokens:,}", f"{obj.cost:.4f}")

    @admin.display(description="Rating", ordering="csat_score")
    def rating(self, obj: Conversation) -> str:
        """The customer's latest rating (denormalised by the ratings service: no query)."""
        if obj.csat_score is None:
            return "—"
        return format_html('<span class="cs-stars" title="{}">★ {}/5</span>', stars(obj.csat_score), obj.csat_score)

    @admin.display(description="Last activity", ordering="updated_at")
    def last_activity(self, obj: Conversation) -> str:
        return date_format(localtime(obj.updated_at), "M j, H:i")

    # --- bulk actions ----------------------------------------------------------------
    @admin.action(description="Retry failed turns of the selected conversations", permissions=["retry_turn"])
    def retry_failed_turns(self, request: Any, queryset: QuerySet) -> None:
        retried, refused = 0, []
        ids = queryset.filter(has_failed_turn=True).values("pk")
        for turn in latest_failed_turns(ids):
            try:
                turn_retry(turn=turn, actor=request.user, trigger=TurnTrigger.STAFF_RETRY)
                retried += 1
            except PlatformError as exc:
                refused.append(exc.message)
        if retried:
            self.message_user(request, f"Retrying {retried} failed turn{'s' if retried != 1 else ''}.",
                              messages.SUCCESS)
        if refused:
            reasons = sorted(set(refused))
            self.message_user(request, f"{len(refused)} not retried: {'; '.join(reasons)}", messages.WARNING)
        if not retried and not refused:
            self.message_user(request, "None of the selected conversations has a failed turn.", messages.INFO)

    @admin.action(description="Resolve the selected conversations", permissions=["set_status"])
    def resolve_conversations(self, request: Any, queryset: QuerySet) -> None:
        done = 0
        # select_related(None): the list's join on the agent cannot go with only().
        for conversation in queryset.exclude(status=Status.RESOLVED).select_related(None).only("pk"):
            conversation_set_status(conversation=conversation, status=Status.RESOLVED, actor=request.user)
            done += 1
        self.message_user(request, f"Resolved {done} conversation{'s' if done != 1 else ''}.", messages.SUCCESS)

    # --- the conversation page and its actions ---------------------------------------
    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        own = [
            path("<uuid:conversation_id>/items/", wrap(self.items_view), name="conversations_conversation_items"),
            path("<uuid:conversation_id>/act/<slug:action>/", wrap(self.act_view), name="conversations_conversation_act"),
            path("<uuid:conversation_id>/export.<slug:fmt>", wrap(self.export_view), name="conversations_conversation_export"),
        ]
        return own + super().get_urls()

    def change_view(self, request: Any, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        return views.conversation_page(self, request, object_id)

    def items_view(self, request: Any, conversation_id: Any) -> Any:
        return views.items_fragment(self, request, conversation_id)

    def act_view(self, request: Any, conversation_id: Any, action: str) -> Any:
        return views.act(self, request, conversation_id, action)

    def export_view(self, request: Any, conversation_id: Any, fmt: str) -> Any:
        return views.export(self, request, conversation_id, fmt)
