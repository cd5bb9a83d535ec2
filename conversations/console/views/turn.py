"""The turn audit page, and starting and showing replays of a turn."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from conversations.agent.provider import is_offline
from conversations.authorization import Action, allowed, principal_of
from conversations.console.models import Replay, ReplayStatus
from conversations.console.replay import replay_start
from conversations.console.selectors import pretty_json, turn_audit
from conversations.console.views import refused, render_page, staff_conversation, turn_url
from conversations.errors import PermissionDenied, PlatformError
from conversations.models import Agent, Turn
from conversations.models.turn import TurnStatus


def _turn_for_staff(request: Any, turn_id: Any) -> Turn:
    try:
        turn_id = uuid.UUID(str(turn_id))
    except ValueError:
        raise Http404("Turn not found.") from None
    if not (request.user.is_staff and request.user.has_perm("conversations.view_turn")):
        raise Http404("Turn not found.")
    conversation_id = Turn.objects.filter(pk=turn_id).values_list("conversation_id", flat=True).first()
    if conversation_id is None:
        raise Http404("Turn not found.")
    staff_conversation(request, conversation_id)
    return Turn(pk=turn_id, conversation_id=conversation_id)


def audit_page(model_admin: Any, request: Any, object_id: str) -> HttpResponse:
    turn = _turn_for_staff(request, object_id)
    audit = turn_audit(turn.pk)
    turn = audit.turn
    principal = principal_of(request.user)
    can_retry = (
        allowed(principal, Action.RETRY, turn.conversation) and audit.is_latest
        and turn.status in (TurnStatus.FAILED, TurnStatus.CANCELLED)
    )
    return render_page(model_admin, request, "console/turn_audit.html", f"Turn audit · attempt {turn.attempt}", {
        "audit": audit,
        "turn": turn,
        "conversation": turn.conversation,
        "requests_json": [pretty_json(body) for body in turn.requests],
        "response_ids": turn.response_ids,
        "can_retry": can_retry,
        "can_replay": allowed(principal, Action.REPLAY, turn.conversation) and bool(turn.requests),
        "agents": list(Agent.objects.order_by("name").only("id", "name", "model")),
        "recorded_instructions": (turn.requests[0].get("instructions", "") if turn.requests else ""),
        "redactions": redaction_lines(turn.redactions),
        "guardrails": [
            f"{d.get('stage')} refused by {d.get('guard')}: {d.get('label')}" for d in turn.guardrails or []
        ],
    })


def redaction_lines(redactions: dict[str, Any] | None) -> list[str] | None:
    """What the audit page says PII redaction did: None when it was off for the turn,
    else one line per kind redacted (an empty list: on, nothing found)."""
    if not redactions or not redactions.get("enabled"):
        return None
    lines = []
    for kind, counts in sorted((redactions.get("kinds") or {}).items()):
        values, replaced = int(counts.get("values", 0)), int(counts.get("replacements", 0))
        lines.append(f"{kind}: {values} value{'s' if values != 1 else ''}, {replaced} "
                     f"replacement{'s' if replaced != 1 else ''}")
    return lines


def replay_create(model_admin: Any, request: Any, turn_id: Any) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    turn = _turn_for_staff(request, turn_id)
    turn = Turn.objects.select_related("agent", "conversation").get(pk=turn.pk)
    agent = None
    if request.POST.get("agent"):
        agent_pk = _int(request.POST["agent"])
        agent = Agent.objects.filter(pk=agent_pk).first() if agent_pk is not None else None
        if agent is None:
            messages.error(request, "Unknown agent.")
            return redirect(turn_url(turn.pk))
    instructions = request.POST.get("instructions") if request.POST.get("override_instructions") else None
    try:
        replay = replay_start(
            turn=turn, actor=request.user, agent=agent, model=request.POST.get("model", ""),
            instructions=instructions,
        )
    except PermissionDenied as exc:
        raise refused(exc) from None
    except PlatformError as exc:
        messages.error(request, exc.message)
        return redirect(turn_url(turn.pk))
    return redirect(reverse("admin:conversations_turn_replay", args=[turn.pk, replay.pk]))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def replay_page(model_admin: Any, request: Any, turn_id: Any, replay_id: Any) -> HttpResponse:
    turn = _turn_for_staff(request, turn_id)
    replay = Replay.objects.select_related("actor", "agent").filter(pk=replay_id, turn_id=turn.pk).first()
    if replay is None:
        raise Http404("Replay not found.")
    audit = turn_audit(turn.pk)
    return render_page(model_admin, request, "console/replay.html", "Replay", {
        "audit": audit,
        "turn": audit.turn,
        "conversation": audit.turn.conversation,
        "replay": replay,
        "running": replay.status == ReplayStatus.RUNNING and not replay.is_stale,
        "offline": is_offline(replay.agent or audit.turn.agent),
        "replay_requests_json": [pretty_json(body) for body in replay.requests],
        "tool_calls": [
            {**call, "arguments_json": pretty_json(call.get("arguments", "")),
             "output_json": pretty_json(call["recorded_output"]) if call.get("recorded_output") is not None else None}
            for call in replay.tool_calls
        ],
    })
