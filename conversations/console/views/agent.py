"""The agent page's try-it panel: a staff member talks to an agent before it goes live.

Each chat is a real conversation on the "playground" channel (kept out of the default
conversation list), owned by the staff member, so it runs through the same services and
engine as a customer's: `conversation_create`, `message_post`, the turn runner, and the
staff websocket for the streamed answer.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse

from conversations.agent.provider import model_label
from conversations.authorization import Action, playground_owner_id
from conversations.console.replay import model_for
from conversations.console.views import staff_authorize
from conversations.errors import InvalidInput, PlatformError, error_body, error_headers
from conversations.models import Agent, Conversation, Message
from conversations.models.conversation import Channel, CustomerKind
from conversations.models.message import CUSTOMER_VISIBLE_KINDS
from conversations.presenters import conversation_state, message_to_dict, turn_summary
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post


def _agent(request: Any, agent_id: Any) -> Agent:
    if not request.user.has_perm("conversations.view_agent"):
        raise Http404("Agent not found.")
    staff_authorize(request, Action.TRY_AGENT)
    agent = Agent.objects.filter(pk=agent_id).first()
    if agent is None:
        raise Http404("Agent not found.")
    return agent


def _playground(request: Any, agent: Agent, conversation_id: Any) -> Conversation:
    conversation = Conversation.objects.filter(
        pk=conversation_id, agent=agent, channel=Channel.PLAYGROUND, customer_id=playground_owner_id(request.user)
    ).first()
    if conversation is None:
        raise Http404("Chat not found.")
    return conversation


def _error(exc: PlatformError) -> JsonResponse:
    """The platform's one error shape; a database outage reaches the outage middleware
    and answers the same shape (503, Retry-After)."""
    return JsonResponse(error_body(exc), status=exc.status, headers=error_headers(exc))


def try_start(model_admin: Any, request: Any, agent_id: Any) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    agent = _agent(request, agent_id)
    user = request.user
    # The staff member plays an anonymous visitor (no known email or account), so tools
    # authorise exactly as they would for a first-time customer on the widget.
    conversation = conversation_create(
        agent=agent,
        channel=Channel.PLAYGROUND,
        customer_kind=CustomerKind.VISITOR,
        customer_id=playground_owner_id(user),
        customer_name=f"{user.get_username()} (try-it panel)",
        metadata={"playground": True, "staff_user": user.pk},
    )
    return JsonResponse({
        "conversation": str(conversation.pk),
        "ws": f"/ws/conversations/{conversation.pk}/",
        "model_label": model_label(model_for(agent), agent),
    }, status=201)


def try_message(model_admin: Any, request: Any, agent_id: Any, conversation_id: Any) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    agent = _agent(request, agent_id)
    conversation = _playground(request, agent, conversation_id)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return _error(InvalidInput("Malformed JSON."))
    if not isinstance(body, dict):
        return _error(InvalidInput("Expected a JSON object."))
    try:
        posted = message_post(
            conversation=conversation, text=body.get("text"), client_id=body.get("client_id", ""),
            actor=request.user,
        )
    except PlatformError as exc:
        return _error(exc)
    return JsonResponse({
        "message": message_to_dict(posted.message),
        "turn": turn_summary(posted.turn) if posted.turn else None,
    }, status=201 if posted.created else 200)


def try_items(model_admin: Any, request: Any, agent_id: Any, conversation_id: Any) -> JsonResponse:
    """Items after a seq: the panel's catch-up when a websocket frame was missed."""
    agent = _agent(request, agent_id)
    conversation = _playground(request, agent, conversation_id)
    try:
        after = int(request.GET.get("after", 0))
    except ValueError:
        after = 0
    items = Message.objects.filter(
        conversation=conversation, seq__gt=after, kind__in=CUSTOMER_VISIBLE_KINDS
    ).order_by("seq")[:200]
    return JsonResponse({
        "conversation": conversation_state(conversation),
        "items": [message_to_dict(m) for m in items],
    })
