"""Cursor pagination for conversation and turn lists (stable under concurrent writes).

Unlike DRF's default, a `limit` that is not an integer within bounds is an error (400)
rather than silently replaced by the default page size.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request


class StrictCursorPagination(CursorPagination):
    page_size_query_param = "limit"
    page_size: int  # every subclass sets both
    max_page_size: int

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"limit": f"must be an integer from 1 to {self.max_page_size}"})
        return size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class ConversationCursor(StrictCursorPagination):
    ordering = "-updated_at"
    page_size = 20
    max_page_size = 100


class TurnCursor(StrictCursorPagination):
    ordering = "created_at"
    page_size = 50
    max_page_size = 200
