"""Turns: list per conversation, retrieve (with the audit for staff-level callers),
retry a failed or cancelled turn, cancel a queued or running one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conversations.access import turn_of_conversation
from conversations.api.pagination import TurnCursor
from conversations.api.principals import Action, conversation_for_principal
from conversations.api.schema import ANSWER_MODES, CONVERSATION_ID, STREAM_RESPONSE, TURN_ID, errors
from conversations.api.schema_shapes import PostResultSerializer, TurnSerializer
from conversations.api.serializers import WaitQuerySerializer
from conversations.api.shapes import turn_dict
from conversations.api.views.answers import answer, run_subscribed, subscribe_if
from conversations.api.views.base import ApiView
from conversations.models import Conversation, Turn
from conversations.models.turn import TurnTrigger
from conversations.services.turns import turn_cancel, turn_retry

_TRIGGERS = {"staff": TurnTrigger.STAFF_RETRY, "key": TurnTrigger.API_RETRY, "visitor": TurnTrigger.CUSTOMER_RETRY}


def _turn(conversation: Conversation, turn_id: Any) -> Turn:
    return turn_of_conversation(conversation.pk, turn_id, related=("user_message", "triggered_by"))


class TurnCollectionView(ApiView):
    pagination_class = TurnCursor

    @extend_schema(
        operation_id="turns_list",
        summary="List turns",
        description="Oldest first, in cursor pages; summaries only (retrieve a turn for its audit).",
        parameters=[CONVERSATION_ID],
        responses={200: TurnSerializer(many=True), **errors(400, 401, 403, 404, 429)},
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.READ)
        turns = (
            Turn.objects.filter(conversation=conversation)
            .select_related("user_message")
            .defer("requests", "history", "response_ids", "partial_text")
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(turns, request, view=self)
        customer = self.principal.customer_view
        return paginator.get_paginated_response([turn_dict(t, internal=False, customer=customer) for t in page or ()])


class TurnDetailView(ApiView):
    @extend_schema(
        operation_id="turns_retrieve",
        summary="Get a turn",
        description="Poll a turn's status. Staff and API keys with the audit scope also get its "
        "audit: the exact requests, the selected history and why, usage, latency, error.",
        parameters=[CONVERSATION_ID, TURN_ID],
        responses={200: TurnSerializer, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, conversation_id: str, turn_id: str) -> Response:
        conversation = conversation_for_principal(self.principal, conversation_id, Action.READ)
        principal = self.principal
        turn = _turn(conversation, turn_id)
        return Response(turn_dict(turn, internal=principal.internal, customer=principal.customer_view))


class TurnRetryView(ApiView):
    @extend_schema(
        operation_id="turns_retry",
        summary="Retry a failed or cancelled turn",
        description="Queues a new attempt for the same customer message (every attempt stays in "
        "the audit); answers the message and the new turn. Only the latest attempt can be "
        "retried, and not while a person has taken over (409). " + ANSWER_MODES,
        parameters=[CONVERSATION_ID, TURN_ID, WaitQuerySerializer],
        request=None,
        responses={
            201: PostResultSerializer,
            (200, "text/event-stream"): STREAM_RESPONSE,
            **errors(400, 401, 403, 404, 409, 429),
        },
    )
    def post(self, request: Request, conversation_id: str, turn_id: str) -> Response:
        principal = self.principal
        conversation = conversation_for_principal(principal, conversation_id, Action.RETRY)
        turn = _turn(conversation, turn_id)
        mode, wait = self.answer_mode()
        subscription = subscribe_if(mode, conversation.pk, request)
        new = run_subscribed(subscription, lambda: turn_retry(
            turn=turn, actor=principal, trigger=_TRIGGERS[principal.kind]
        ))
        return answer(
            mode=mode, wait=wait, subscription=subscription, message=turn.user_message, turn=new,
            created=True, internal=principal.internal, after_seq=conversation.next_seq - 1,
            status=200 if mode == "stream" else 201, customer=principal.customer_view,
        )


class TurnCancelView(ApiView):
    @extend_schema(
        operation_id="turns_cancel",
        summary="Cancel a queued or running turn",
        description="A queued turn is cancelled at once; a running one is asked to stop at its "
        "next step (cancel_requested) and ends cancelled. A finished turn answers 409.",
        parameters=[CONVERSATION_ID, TURN_ID],
        request=None,
        responses={200: TurnSerializer, **errors(401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, conversation_id: str, turn_id: str) -> Response:
        principal = self.principal
        conversation = conversation_for_principal(principal, conversation_id, Action.CANCEL)
        turn = turn_cancel(turn=_turn(conversation, turn_id), actor=principal)
        return Response(turn_dict(turn, internal=principal.internal, customer=principal.customer_view))
