"""`lookup_order`: order status for the customer in this conversation only.

Authorisation is in code, not in the prompt: a conversation whose customer is known
(an external user id or a verified email) sees only that customer's orders; an anonymous
visitor must give the order number together with the email it was placed with. The
answer for someone else's order is the same as for an order that does not exist, so the
tool cannot be used to discover which order numbers exist.
"""

from __future__ import annotations

from typing import Any

from tools.models import DemoOrder
from tools.registry import ToolContext, tool

NOT_FOUND = (
    "No order with that number was found for this customer. Ask the customer to check the "
    "order number and the email address used for the order."
)


def _normalise_number(order_number: str) -> str:
    return order_number.strip().lstrip("#").upper()


def order_visible_to(order: DemoOrder, context: ToolContext, email: str | None) -> bool:
    given = (email or "").strip().lower()
    if context.customer_kind == "user" and order.customer_id:
        return order.customer_id == context.customer_id
    known = context.customer_email.strip().lower()
    if known:
        return order.customer_email.lower() == known and given in ("", known)
    return bool(given) and order.customer_email.lower() == given


@tool(activity="Looking up your order...")
def lookup_order(context: ToolContext, order_number: str, email: str | None) -> dict[str, Any] | str:
    """Look up the status of one of the customer's orders.

    Args:
        order_number: The order number the customer gave, e.g. "1001".
        email: The email address the order was placed with, if the customer gave it.
    """
    order = DemoOrder.objects.filter(number=_normalise_number(order_number)).first()
    if order is None or not order_visible_to(order, context, email):
        return NOT_FOUND
    return {
        "order_number": order.number,
        "status": order.status,
        "items": order.items,
        "total": str(order.total),
        "carrier": order.carrier or None,
        "tracking_number": order.tracking_number or None,
        "placed_at": order.placed_at.date().isoformat(),
        "estimated_delivery": order.estimated_delivery.isoformat() if order.estimated_delivery else None,
    }
