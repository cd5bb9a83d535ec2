"""The conversation page, its transcript pages, the staff actions and the exports.

Every action calls one service with the staff member as the actor: the service decides
whether they may (`conversations.authorization`) and records the StaffAction. The view
redirects back with the outcome as an admin message; a refusal of the permission is a
403, any other refused action (a PlatformError) is shown, not raised.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string

from conversations.access import turn_of_conversation
from conversations.authorization import Action, allowed, principal_of
from conversations.console.selectors import (
    conversation_facts,
    conversation_ratings,
    latest_failed_turns,
    pretty_json,
    recent_staff_actions,
    transcript_page,
)
from conversations.console.views import (
    conversation_url,
    refused,
    render_page,
    safe_next,
    staff_authorize,
    staff_conversation,
)
from conversations.errors import PermissionDenied, PlatformError
from conversations.models import Conversation, Message
from conversations.models.conversation import Status
from conversations.models.turn import TurnTrigger
from conversations.presenters import conversation_state, message_to_dict
from conversations.services.conversations import (
    conversation_hand_back,
    conversation_set_status,
    conversation_take_over,
)
from conversations.services.facts import fact_add, fact_delete, fact_edit, fact_of_conversation
from conversations.services.messages import note_add, staff_reply_post
from conversations.services.turns import turn_retry


def _seq(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _customer_label(conversation: Conversation) -> str:
    return conversation.customer_name or conversation.customer_email or conversation.customer_id


# The page's controls, by the console permission the template names them after.
CONTROLS: dict[str, Action] = {
    "reply_as_staff": Action.REPLY, "take_over": Action.TAKE_OVER, "retry_turn": Action.RETRY,
    "set_status": Action.SET_STATUS, "add_note": Action.NOTE, "replay_turn": Action.REPLAY,
    "try_agent": Action.TRY_AGENT, "keep_facts": Action.FACTS,
}


def controls(user: Any, conversation: Conversation, names: tuple[str, ...] = tuple(CONTROLS)) -> dict[str, bool]:
    """Which action controls to show: the access layer's answer for this staff member."""
    principal = principal_of(user)
    return {name: allowed(principal, CONTROLS[name], conversation) for name in names}


def conversation_page(model_admin: Any, request: Any, object_id: str) -> HttpResponse:
    conversation = staff_conversation(request, object_id)
    page = transcript_page(conversation, before=_seq(request.GET.get("before")))
    failed = []
    if conversation.has_failed_turn:
        failed = list(
            latest_failed_turns([conversation.pk])
            .select_related("user_message")
            .only("id", "attempt", "error_code", "error_message", "created_at", "user_message__seq",
                  "user_message__text")[:20]
        )
    user = request.user
    return render_page(model_admin, request, "console/conversation.html", _customer_label(conversation), {
        "conversation": conversation,
        "page": page,
        "failed_turns": failed,
        "staff_actions": recent_staff_actions(conversation),
        "facts": conversation_facts(conversation),
        "ratings": conversation_ratings(conversation),
        "can": controls(user, conversation),
        "metadata_json": pretty_json(conversation.metadata) if conversation.metadata else "",
        "reply_client_id": uuid.uuid4().hex,
        "state_json": conversation_state(conversation),
        "statuses": Status,
    })


def items_fragment(model_admin: Any, request: Any, conversation_id: Any) -> HttpResponse:
    """A page of transcript items as HTML (load earlier; live catch-up after a seq)."""
    conversation = staff_conversation(request, conversation_id)
    page = transcript_page(
        conversation, before=_seq(request.GET.get("before")), after=_seq(request.GET.get("after"))
    )
    html = render_to_string("console/_items.html", {
        "page": page, "conversation": conversation,
        "can": controls(request.user, conversation, ("retry_turn",)),
    }, request=request)
    response = HttpResponse(html)
    response["X-First-Seq"] = page.first_seq or ""
    response["X-Last-Seq"] = page.last_seq or ""
    response["X-Has-Earlier"] = "1" if page.has_earlier else "0"
    # The live page refreshes its badges from this (the row was read for access anyway).
    response["X-Conversation-State"] = json.dumps({
        "status": conversation.status, "ai_paused": conversation.ai_paused,
        "has_failed_turn": conversation.has_failed_turn,
    })
    return response


def _retry(request: Any, conversation: Conversation) -> str:
    turn = turn_of_conversation(conversation.pk, request.POST.get("turn", ""))
    new = turn_retry(turn=turn, actor=request.user, trigger=TurnTrigger.STAFF_RETRY)
    return f"Retrying: attempt {new.attempt} is queued."


def _take_over(request: Any, conversation: Conversation) -> str:
    conversation_take_over(conversation=conversation, actor=request.user)
    return "You have taken over: the AI is paused until you hand the conversation back."


def _hand_back(request: Any, conversation: Conversation) -> str:
    conversation_hand_back(conversation=conversation, actor=request.user)
    return "Handed back to the AI."


def _reply(request: Any, conversation: Conversation) -> str:
    staff_reply_post(
        conversation=conversation, actor=request.user, text=request.POST.get("text"),
        client_id=request.POST.get("client_id", ""),
    )
    return "Reply sent to the customer. The AI stays paused until you hand back."


def _note(request: Any, conversation: Conversation) -> str:
    as_fact = request.POST.get("as_fact") == "1"
    note_add(conversation=conversation, actor=request.user, text=request.POST.get("text"), as_fact=as_fact)
    if as_fact:
        return "Internal note added, and kept as a customer fact (the AI reads facts on every turn)."
    return "Internal note added (never shown to the customer or the AI)."


def _fact_add(request: Any, conversation: Conversation) -> str:
    fact_add(conversation=conversation, actor=request.user, text=request.POST.get("text"))
    return "Customer fact added: the AI reads it on every turn."


def _fact_edit(request: Any, conversation: Conversation) -> str:
    fact = fact_of_conversation(conversation, request.POST.get("fact"))
    fact_edit(fact=fact, actor=request.user, text=request.POST.get("text"))
    return "Customer fact saved."


def _fact_delete(request: Any, conversation: Conversation) -> str:
    fact = fact_of_conversation(conversation, request.POST.get("fact"))
    fact_delete(fact=fact, actor=request.user)
    return "Customer fact deleted."


def _resolve(request: Any, conversation: Conversation) -> str:
    conversation_set_status(conversation=conversation, status=Status.RESOLVED, actor=request.user)
    return "Conversation resolved."


def _reopen(request: Any, conversation: Conversation) -> str:
    conversation_set_status(conversation=conversation, status=Status.OPEN, actor=request.user)
    return "Conversation reopened."


ACTIONS: dict[str, Callable[[Any, Conversation], str]] = {
    "retry": _retry,
    "take-over": _take_over,
    "hand-back": _hand_back,
    "reply": _reply,
    "note": _note,
    "fact-add": _fact_add,
    "fact-edit": _fact_edit,
    "fact-delete": _fact_delete,
    "resolve": _resolve,
    "reopen": _reopen,
}


def act(model_admin: Any, request: Any, conversation_id: Any, action: str) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    conversation = staff_conversation(request, conversation_id)
    if action not in ACTIONS:
        raise Http404("Unknown action.")
    try:
        messages.success(request, ACTIONS[action](request, conversation))
    except PermissionDenied as exc:
        raise refused(exc) from None
    except PlatformError as exc:
        messages.error(request, exc.message)
    return redirect(safe_next(request, conversation_url(conversation.pk)))


# --- exports ---------------------------------------------------------------------------
def _header(conversation: Conversation) -> dict[str, Any]:
    return {
        **conversation_state(conversation),
        "agent_name": conversation.agent.name,
        "customer_kind": conversation.customer_kind,
        "customer_id": conversation.customer_id,
        "customer_email": conversation.customer_email,
        "customer_name": conversation.customer_name,
        "metadata": conversation.metadata,
        "message_count": conversation.message_count,
        "input_tokens": conversation.input_tokens,
        "output_tokens": conversation.output_tokens,
        "cost": str(conversation.cost),
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
    }


def _json_chunks(conversation: Conversation) -> Iterator[str]:
    yield '{"conversation": ' + json.dumps(_header(conversation)) + ', "items": ['
    first = True
    for message in Message.objects.filter(conversation=conversation).order_by("seq").iterator(chunk_size=500):
        yield ("" if first else ", ") + json.dumps(message_to_dict(message), ensure_ascii=False)
        first = False
    yield "]}\n"


_LABELS = {
    "user": "Customer", "assistant": "AI", "function_call": "Tool call",
    "function_output": "Tool output", "staff": "Staff", "note": "Internal note",
}


def text_line(message: Message) -> str:
    when = message.created_at.strftime("%Y-%m-%d %H:%M:%S")
    label = _LABELS.get(message.kind, message.kind)
    author = (message.metadata or {}).get("author_name")
    if author and message.kind in ("staff", "note"):
        label = f"{label} ({author})"
    if message.kind == "function_call":
        body = f"{message.tool_name}({message.tool_arguments})"
    elif message.kind == "function_output":
        body = f"{message.tool_name}: {message.text}"
    else:
        body = message.text
    return f"[{when}] #{message.seq} {label}: {body}\n"


def _text_chunks(conversation: Conversation) -> Iterator[str]:
    header = _header(conversation)
    yield (
        f"Conversation {header['id']}\nCustomer: {_customer_label(conversation)} ({conversation.customer_id})\n"
        f"Agent: {header['agent_name']} · Channel: {conversation.get_channel_display()} · "
        f"Status: {conversation.get_status_display()}\n\n"
    )
    for message in Message.objects.filter(conversation=conversation).order_by("seq").iterator(chunk_size=500):
        yield text_line(message)


def export(model_admin: Any, request: Any, conversation_id: Any, fmt: str) -> StreamingHttpResponse:
    conversation = staff_conversation(request, conversation_id)
    staff_authorize(request, Action.EXPORT, conversation)
    if fmt == "json":
        response = StreamingHttpResponse(_json_chunks(conversation), content_type="application/json")
    elif fmt == "txt":
        response = StreamingHttpResponse(_text_chunks(conversation), content_type="text/plain; charset=utf-8")
    else:
        raise Http404("Unknown export format.")
    response["Content-Disposition"] = f'attachment; filename="conversation-{conversation.pk}.{fmt}"'
    return response
