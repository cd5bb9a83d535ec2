"""The conversation list's paginator: "waiting on staff first" without sorting every row.

Ordering by an expression (status is waiting ? 0 : 1, then last activity) makes the
database read and sort every matching row to return one page: with 100,000
conversations that is most of the page's time, and a deep page costs more. The same
order is two index-ordered reads: the waiting conversations newest first, then the rest
newest first. This paginator slices a page across the two, so a page costs a count of
the waiting ones and one or two LIMIT/OFFSET reads along the `(status, updated_at)` and
`(updated_at)` indexes, whatever the table size.
"""

from __future__ import annotations

from typing import Any, cast

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from conversations.models.conversation import Status

ORDER = ("-updated_at", "-pk")


class WaitingFirstPaginator(Paginator):
    """Pages of `object_list` in the order: waiting on staff first, then by last activity
    (newest first). Equivalent to ordering by that expression, read through indexes."""

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        base = cast(QuerySet, self.object_list).order_by()  # the console pages querysets
        waiting = base.filter(status=Status.WAITING_ON_STAFF).order_by(*ORDER)
        rest = base.exclude(status=Status.WAITING_ON_STAFF).order_by(*ORDER)
        waiting_count = waiting.count()
        items = list(waiting[bottom:min(top, waiting_count)]) if bottom < waiting_count else []
        if len(items) < self.per_page:
            start = max(0, bottom - waiting_count)
            items += list(rest[start:start + self.per_page - len(items)])
        return self._get_page(items, number, self)  # type: ignore[attr-defined]  # Django's Page hook, not in the stubs
