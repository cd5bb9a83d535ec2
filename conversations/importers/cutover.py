"""Cut-over: a customer identified by the `customer_id` their imported conversation has
lands in it instead of in a new, empty conversation.

The REST API's conversation create asks `imported_conversation_for_customer` among the
conversations the caller may see (an API key: its own client's, so an import must be
assigned with `--api-client` or an `api_client` mapping column; a key with
`all_conversations`, or staff: all). Another client's imported conversations are never
returned: for them the create makes a new conversation, revealing nothing.
"""

from __future__ import annotations

from django.db.models import QuerySet

from conversations.models import Conversation
from conversations.models.conversation import Channel, CustomerKind


def imported_conversation_for_customer(visible: QuerySet[Conversation], customer_id: str) -> Conversation | None:
    """The identified customer's imported conversation among `visible`, the most
    recently active when there are several; None when there is none."""
    if not customer_id:
        return None
    return (
        visible.filter(customer_id=customer_id, customer_kind=CustomerKind.USER, channel=Channel.IMPORTED)
        .order_by("-updated_at", "-created_at")
        .first()
    )
