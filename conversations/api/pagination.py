"""Cursor pagination for conversation and turn lists (stable under concurrent writes)."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class ConversationCursor(CursorPagination):
    ordering = "-updated_at"
    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100


class TurnCursor(CursorPagination):
    ordering = "created_at"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200
