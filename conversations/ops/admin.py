"""The operations dashboard in the admin: /admin/ops/dashboard/ (?start=&end= ISO dates).

A thin door: parse the date range, call `dashboard.dashboard_data`, render. Staff need
the `ops.view_dashboard` permission (superusers have it).
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from conversations.ops import charts, page
from conversations.ops.dashboard import MAX_DAYS, clamp_range, dashboard_data, default_range
from conversations.ops.models import Dashboard

PRESETS = (7, 30, 90)


def _parse_range(request: HttpRequest) -> tuple[date, date, str]:
    start, end = default_range()
    try:
        if request.GET.get("end"):
            end = date.fromisoformat(request.GET["end"])
        if request.GET.get("days"):
            start = end - timedelta(days=max(1, int(request.GET["days"])) - 1)
        elif request.GET.get("start"):
            start = date.fromisoformat(request.GET["start"])
        else:
            start = end - timedelta(days=29)
    except ValueError:
        return *default_range(), "Dates must look like 2025-01-31; showing the last 30 days."
    clamped = clamp_range(start, end)
    note = "" if clamped == (min(start, end), max(start, end)) else f"Ranges are limited to {MAX_DAYS} days."
    return *clamped, note


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        began = time.perf_counter()
        start, end, note = _parse_range(request)
        if note:
            messages.warning(request, note)
        data = dashboard_data(start=start, end=end)
        today = timezone.localdate()
        context = {
            **self.admin_site.each_context(request),
            "title": "Operations dashboard",
            "opts": self.model._meta,
            "data": data,
            "charts": charts.dashboard_charts(data),
            "tiles": page.tiles(data),
            "daily_columns": page.DAILY_COLUMNS,
            "daily_rows": page.daily_rows(data),
            "slowest": page.slowest_rows(data),
            "csat": page.csat_rows(data),
            "presets": [(days, days == (end - start).days + 1 and end == today) for days in PRESETS],
            "today": today,
            "time_zone": settings.TIME_ZONE,
            "computed_ms": round((time.perf_counter() - began) * 1000),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "ops/dashboard.html", context)
