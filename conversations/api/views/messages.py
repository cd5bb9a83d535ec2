"""Messages: list in seq order (catch up with `after`), post a customer message."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.api.principals import Action, conversation_for_principal
from conversations.api.schema import ANSWER_MODES, CONVERSATION_ID, STREAM_RESPONSE, errors
from conversations.api.schema_shapes import MessageListSerializer, PostResultSerializer
from conversations.api.serializers import (
    MessageCreateSerializer,
    MessageListQuerySerializer,
    WaitQuerySerializer,
)
from conversations.api.shapes import message_dict
from conversations.api.views.answers import answer, run_subscribed, subscribe_if
from conversations.api.views.base import ApiView
from conversations.errors import InvalidInput
from conversations.models import Message
from conversations.models.message import CUSTOMER_VISIBLE_KINDS, MessageKind
from conversations.services.messages import message_post

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
    description="Same as client_id: a repeated key returns the first message and its turn.",
)


class MessageCollectionView(ApiView):
    @extend_schema(
        operation_id="messages_list",
        summary="List messages",
        description="In seq order. Internal notes only for staff and API keys with the audit scope.",
        parameters=[CONVERSATION_ID, MessageListQuerySerializer],
        responses={200: MessageListSerializer, **errors(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        principal = self.principal
        conversation = conversation_for_principal(principal, conversation_id, Action.READ)
        query = self.valid(MessageListQuerySerializer, request.query_params)
        limit = query["limit"]
        messages = Message.objects.filter(conversation=conversation, seq__gt=query["after"]).order_by("seq")
        if principal.customer_view:
            messages = messages.filter(kind__in=CUSTOMER_VISIBLE_KINDS)
        elif not principal.internal:
            messages = messages.exclude(kind=MessageKind.NOTE)
        page = list(messages[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        return Response({
            "results": [message_dict(m, customer=principal.customer_view) for m in page],
            "has_more": has_more,
            "last_seq": page[-1].seq if page else None,
        })

    @extend_schema(
        operation_id="messages_create",
        summary="Post a customer message",
        description="Stores the message and queues its turn in one transaction (201; 200 when "
        "client_id / Idempotency-Key was seen before). " + ANSWER_MODES,
        parameters=[CONVERSATION_ID, WaitQuerySerializer, IDEMPOTENCY_KEY],
        request=MessageCreateSerializer,
        responses={
            201: PostResultSerializer,
            (200, "application/json"): PostResultSerializer,
            (200, "text/event-stream"): STREAM_RESPONSE,
            **errors(400, 401, 403, 404, 409, 413, 429),
        },
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        principal = self.principal
        conversation = conversation_for_principal(principal, conversation_id, Action.POST)
        data = self.body(MessageCreateSerializer)
        client_id = data.get("client_id", "")
        header = request.META.get("HTTP_IDEMPOTENCY_KEY", "")
        if header and client_id and header != client_id:
            raise InvalidInput(
                "client_id and the Idempotency-Key header differ.",
                fields={"client_id": "differs from the Idempotency-Key header"},
            )
        mode, wait = self.answer_mode()
        subscription = subscribe_if(mode, conversation.pk, request)
        result = run_subscribed(subscription, lambda: message_post(
            conversation=conversation, text=data["text"], client_id=client_id or header,
            metadata=data.get("metadata"), actor=principal,
        ))
        return answer(
            mode=mode, wait=wait, subscription=subscription, message=result.message, turn=result.turn,
            created=result.created, internal=principal.internal, after_seq=result.message.seq - 1,
            status=201 if result.created and mode != "stream" else 200, replay=not result.created,
            customer=principal.customer_view,
        )
