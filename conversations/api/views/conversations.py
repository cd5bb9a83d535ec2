"""Conversations: create, list (filters, cursor pages), retrieve, status, handoff, handback,
and the customer's rating (CSAT)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.access import visitor_token_issue
from conversations.api.pagination import ConversationCursor
from conversations.api.principals import (
    Action,
    conversation_for_principal,
    conversations_visible_to,
    principal_require,
)
from conversations.api.schema import CONVERSATION_ID, errors
from conversations.api.schema_shapes import (
    ConversationCreatedSerializer,
    ConversationSerializer,
    RatingSerializer,
)
from conversations.api.serializers import (
    ConversationCreateSerializer,
    ConversationFilterSerializer,
    ConversationUpdateSerializer,
    HandoffSerializer,
    RatingCreateSerializer,
)
from conversations.api.services import api_conversation_create
from conversations.api.shapes import conversation_dict, rating_dict
from conversations.api.views.base import ApiView
from conversations.errors import PermissionDenied
from conversations.importers.cutover import imported_conversation_for_customer
from conversations.models.conversation import Channel, CustomerKind
from conversations.services.conversations import (
    conversation_hand_back,
    conversation_handoff,
    conversation_set_status,
)
from conversations.services.ratings import rating_add


class ConversationCollectionView(ApiView):
    pagination_class = ConversationCursor

    def get_permissions(self) -> list[Any]:
        # Anonymous callers may create a conversation (as a visitor); `get` checks itself.
        return [AllowAny()]

    @extend_schema(
        operation_id="conversations_list",
        summary="List conversations",
        description="Newest activity first, in cursor pages. Visitors see their one conversation; "
        "API keys their integration's (or all, with the all_conversations scope).",
        parameters=[ConversationFilterSerializer],
        responses={200: ConversationSerializer(many=True), **errors(400, 401, 403, 404, 429)},
        # drf-spectacular annotates `auth` as names, but its get_auth returns these
        # security requirement objects as they are.
        auth=[{"apiKey": []}, {"visitorToken": []}, {"staffSession": []}],  # type: ignore[list-item]
    )
    def get(self, request: Request) -> Response:
        principal = self.principal
        principal_require(principal, Action.READ)
        filters = self.valid(ConversationFilterSerializer, request.query_params)
        queryset = conversations_visible_to(principal)
        if "status" in filters:
            queryset = queryset.filter(status=filters["status"])
        if "agent" in filters:
            queryset = queryset.filter(agent_id=filters["agent"])
        if "customer" in filters:
            queryset = queryset.filter(customer_id=filters["customer"])
        if "channel" in filters:
            queryset = queryset.filter(channel=filters["channel"])
        if "updated_since" in filters:
            queryset = queryset.filter(updated_at__gte=filters["updated_since"])
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        internal = principal.internal
        customer = principal.customer_view
        return paginator.get_paginated_response(
            [conversation_dict(c, internal=internal, customer=customer) for c in page or ()]
        )

    @extend_schema(
        operation_id="conversations_create",
        summary="Start a conversation",
        description="With an API key (write scope) or staff session: choose the agent and the "
        "customer's identity. Without credentials: an anonymous visitor conversation with the "
        "default agent. Either way the answer carries a visitor token for this conversation "
        "(for a widget or app to talk to it directly). A customer_id that has an imported "
        "conversation this caller may see resumes it instead (200, resumed_imported: true).",
        request=ConversationCreateSerializer,
        responses={
            200: ConversationCreatedSerializer,
            201: ConversationCreatedSerializer,
            **errors(400, 401, 403, 404, 413, 429),
        },
        auth=[{"apiKey": []}, {"staffSession": []}, {}],  # type: ignore[list-item]  # as above
    )
    def post(self, request: Request) -> Response:
        principal = self.principal
        principal_require(principal, Action.CREATE)
        data = self.body(ConversationCreateSerializer)
        fields: dict[str, Any] = {
            "customer_email": data.get("customer_email", ""),
            "customer_name": data.get("customer_name", ""),
            "metadata": data.get("metadata") or {},
        }
        if principal.kind in ("anonymous", "visitor"):
            if data.get("agent") or data.get("customer_id"):
                raise PermissionDenied(
                    "Anonymous visitors cannot choose the agent or claim a customer id.",
                    fields={name: "not allowed" for name in ("agent", "customer_id") if data.get(name)},
                )
            fields.update(channel=Channel.WIDGET, customer_kind=CustomerKind.VISITOR)
        else:
            customer_id = data.get("customer_id", "")
            imported = imported_conversation_for_customer(conversations_visible_to(principal), customer_id)
            if imported is not None:
                body = conversation_dict(imported, internal=principal.internal)
                body.update(visitor_token=visitor_token_issue(imported), resumed_imported=True)
                return Response(body, status=200)
            fields.update(
                channel=Channel.API,
                agent=data.get("agent"),
                customer_id=customer_id,
                customer_kind=CustomerKind.USER if customer_id else CustomerKind.VISITOR,
            )
        conversation = api_conversation_create(key=principal.key, **fields)
        body = conversation_dict(conversation, internal=principal.internal)
        body.update(visitor_token=visitor_token_issue(conversation), resumed_imported=False)
        return Response(body, status=201)


class ConversationDetailView(ApiView):
    @extend_schema(
        operation_id="conversations_retrieve",
        summary="Get a conversation",
        parameters=[CONVERSATION_ID],
        responses={200: ConversationSerializer, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.READ)
        return Response(conversation_dict(conversation, internal=self.principal.internal, customer=self.principal.customer_view))

    @extend_schema(
        operation_id="conversations_update",
        summary="Resolve or reopen",
        parameters=[CONVERSATION_ID],
        request=ConversationUpdateSerializer,
        responses={200: ConversationSerializer, **errors(400, 401, 403, 404, 413, 429)},
    )
    def patch(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.SET_STATUS)
        data = self.body(ConversationUpdateSerializer)
        conversation = conversation_set_status(conversation=conversation, status=data["status"], actor=self.principal)
        return Response(conversation_dict(conversation, internal=self.principal.internal, customer=self.principal.customer_view))


class ConversationHandoffView(ApiView):
    @extend_schema(
        operation_id="conversations_handoff",
        summary="Hand off to staff",
        description="Waiting on staff, AI paused; queued turns are cancelled and a running one "
        "is asked to stop. Visitors may ask for a person too.",
        parameters=[CONVERSATION_ID],
        request=HandoffSerializer,
        responses={200: ConversationSerializer, **errors(400, 401, 403, 404, 413, 429)},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.HANDOFF)
        data = self.body(HandoffSerializer)
        conversation = conversation_handoff(
            conversation=conversation, reason=data.get("reason", ""), actor=self.principal
        )
        return Response(conversation_dict(conversation, internal=self.principal.internal, customer=self.principal.customer_view))


class ConversationHandbackView(ApiView):
    @extend_schema(
        operation_id="conversations_handback",
        summary="Hand back to the AI",
        description="The AI answers again; if the customer's last message is unanswered, a turn is queued.",
        parameters=[CONVERSATION_ID],
        request=None,
        responses={200: ConversationSerializer, **errors(401, 403, 404, 429)},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.HAND_BACK)
        conversation = conversation_hand_back(conversation=conversation, actor=self.principal)
        return Response(conversation_dict(conversation, internal=self.principal.internal, customer=self.principal.customer_view))


class ConversationRatingView(ApiView):
    @extend_schema(
        operation_id="conversations_rate",
        summary="Rate a resolved conversation (CSAT)",
        description="The customer's 1-5 rating and optional comment, once per resolution: the "
        "conversation's visitor token, or an API key with the write scope on the customer's "
        "behalf (staff sessions are refused: only the customer rates). 409 `not_resolved` while "
        "it is not resolved, 409 `already_rated` for a resolution already rated; reopened and "
        "resolved again, it may be rated again.",
        parameters=[CONVERSATION_ID],
        request=RatingCreateSerializer,
        responses={201: RatingSerializer, **errors(400, 401, 403, 404, 409, 413, 429)},
    )
    def post(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.RATE)
        data = self.body(RatingCreateSerializer)
        rating = rating_add(
            conversation=conversation, actor=self.principal, score=data["score"], comment=data.get("comment", "")
        )
        return Response(rating_dict(rating), status=201)
