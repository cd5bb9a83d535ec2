"""List filters for the conversation list that cost no query of their own.

The channel filter hides the staff playground (the agents' try-it conversations) unless
it is asked for, so the default list is customer conversations only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet

from conversations.models.conversation import Channel

CUSTOMER_CHANNELS = [c for c in Channel.values if c != Channel.PLAYGROUND]
ANY = "any"


class ChannelFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "channel"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [*Channel.choices, (ANY, "Any channel, with playground")]

    def queryset(self, request: Any, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == ANY:
            return queryset
        if value in Channel.values:
            return queryset.filter(channel=value)
        return queryset.filter(channel__in=CUSTOMER_CHANNELS)

    def choices(self, changelist: Any) -> Any:
        for index, choice in enumerate(super().choices(changelist)):
            if index == 0:
                choice["display"] = "Customer channels"
            yield choice



class RatingFilter(admin.SimpleListFilter):
    """The customer's latest rating (`Conversation.csat_score`)."""

    title = "customer rating"
    parameter_name = "rating"
    _RANGES = {"low": (1, 2), "mid": (3, 3), "high": (4, 5)}

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("low", "1-2 (unhappy)"), ("mid", "3"), ("high", "4-5 (happy)"), ("rated", "Rated"),
                ("unrated", "Not rated")]

    def queryset(self, request: Any, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in self._RANGES:
            low, high = self._RANGES[value]
            return queryset.filter(csat_score__gte=low, csat_score__lte=high)
        if value == "rated":
            return queryset.filter(csat_score__isnull=False)
        if value == "unrated":
            return queryset.filter(csat_score__isnull=True)
        return queryset


def _titled(base: type, title: str) -> type:
    """A built-in field filter with a clearer title than the field's verbose name."""

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)  # type: ignore[misc]  # `base` is this class's only base
        self.title = title

    return type(f"{base.__name__}_{title.replace(' ', '_')}", (base,), {"__init__": __init__})


LastActivityFilter = _titled(admin.DateFieldListFilter, "last activity")
FailedTurnFilter = _titled(admin.BooleanFieldListFilter, "failed turn")
AIPausedFilter = _titled(admin.BooleanFieldListFilter, "AI paused")
