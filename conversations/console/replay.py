"""Replay: re-run a turn's recorded input against another agent, model or instructions.

This is how staff try a prompt change on real cases before rolling it out. A replay is
a turn run through the engine's one loop (`runner.run_rounds`) with the one request
builder (`plan.TurnPlan.request`), so every request rule (the model's capabilities,
reasoning pass-back, `phase`, caching key, safety identifier) applies to it as it does
to real turns. What differs is only what it is given:

- the plan: the target agent (another agent, or the turn's own as it is now) with the
  staff member's model or instructions override, and as history exactly the input the
  turn first sent (`Turn.requests[0]["input"]`), never re-selected (no context-length
  shrink either);
- a progress whose events go nowhere (`_NoEvents`): nothing reaches the conversation's
  group;
- a tool runner that never runs a tool (tools have side effects: `handoff_to_human`
  pauses the AI): a call the recording already answered (same tool, same arguments)
  gets the recorded output so the replay can reach an answer; any other call ends the
  replay and is shown as requested.

It never touches the conversation: no Message or Turn row is written. The outcome is
stored on a `Replay` row for the side-by-side page.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.agent import plan as turn_plan
from conversations.agent.capabilities import capabilities_for
from conversations.agent.engine import Engine
from conversations.agent.engine import engine as default_engine
from conversations.agent.events import EngineEvent
from conversations.agent.history import HistorySelection
from conversations.agent.plan import OFFLINE_MODEL
from conversations.agent.pricing import cost_for
from conversations.agent.progress import TurnProgress
from conversations.agent.provider import is_offline
from conversations.agent.runner import Failure, run_rounds
from conversations.authorization import Action, Actor, authorize_turn
from conversations.conf import platform_setting
from conversations.console.models import Replay, ReplayStatus, ReplayStop
from conversations.errors import InvalidInput
from conversations.models import Agent, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError
from tools.registry import ToolCallResult, ToolContext, definitions_for

logger = logging.getLogger(__name__)

UNRECORDED = "unrecorded_tool_call"


def model_for(agent: Agent) -> str:
    """The model name a turn of `agent` would send (as the turn planner chooses it)."""
    if is_offline(agent):
        return OFFLINE_MODEL
    return agent.model or platform_setting("DEFAULT_MODEL")


def replay_plan(
    *, turn: Turn, agent: Agent | None = None, model: str = "", instructions: str | None = None,
    replay_id: Any = None,
) -> tuple[turn_plan.TurnPlan, dict[str, Any]]:
    """The plan a replay runs, and a description of what differs from the recording.

    With `agent`, that agent's model, instructions, tools and sampling settings are
    used, else the turn's own agent's; `model` and `instructions` then override those.
    The input items (the selected history and the customer's message) are always the
    recorded ones."""
    if not turn.requests:
        raise InvalidInput("This turn never sent a request, so there is nothing to replay.")
    overrides: dict[str, Any] = {}
    target = agent or turn.agent
    if agent is not None and agent.pk != turn.agent_id:
        overrides["agent"] = agent.name
    target = copy.copy(target)  # overrides apply to this replay only
    chosen_model = model_for(target)
    capabilities = capabilities_for(chosen_model, target.model_capabilities or None)
    if model.strip():
        overrides["model"] = model.strip()
        chosen_model = model.strip()
        capabilities = capabilities_for(chosen_model)
    if instructions is not None and instructions != (target.instructions or ""):
        overrides["instructions"] = True
        target.instructions = instructions if instructions.strip() else ""
    recorded_input = list(turn.requests[0].get("input", []))
    conversation = turn.conversation
    tool_names = list(target.tools or [])
    metadata = {"replay_of": str(turn.pk)}
    if replay_id is not None:
        metadata["replay"] = str(replay_id)
    plan = turn_plan.TurnPlan(
        turn=turn,
        agent=target,
        conversation_id=str(turn.conversation_id),
        model=chosen_model,
        budget=turn.history_budget,
        selection=HistorySelection(
            items=[], input_items=recorded_input, budget=turn.history_budget, tokens=turn.history_tokens,
            explanation=list(turn.history or []),
        ),
        tool_names=tool_names,
        tool_definitions=definitions_for(tool_names),
        tool_context=ToolContext(
            conversation_id=str(conversation.pk), customer_id=conversation.customer_id,
            customer_kind=conversation.customer_kind, customer_email=conversation.customer_email,
            metadata=dict(conversation.metadata), agent_id=target.pk, turn_id=str(turn.pk),
        ),
        max_tool_rounds=target.max_tool_rounds,
        capabilities=capabilities,
        metadata=metadata,
        shrinkable=False,
    )
    return plan, overrides


def replay_start(
    *,
    turn: Turn,
    actor: Actor,
    agent: Agent | None = None,
    model: str = "",
    instructions: str | None = None,
    engine: Engine | None = None,
) -> Replay:
    """Record a replay and start it on the engine after commit. Returns it running;
    `replay_run` fills in the outcome. `actor` is the acting principal (a staff user);
    refused unless it may replay turns of this conversation."""
    actor = authorize_turn(actor, Action.REPLAY, turn).staff_user
    plan, overrides = replay_plan(turn=turn, agent=agent, model=model, instructions=instructions)
    with transaction.atomic():
        replay = Replay.objects.create(
            turn=turn,
            actor=actor if getattr(actor, "pk", None) else None,
            agent=agent or turn.agent,
            model=plan.model,
            instructions=plan.agent.instructions or "",
            overrides=overrides,
            requests=[plan.request(plan.input_items)],
        )
        runner = engine or default_engine
        transaction.on_commit(lambda: runner.submit(replay_run(replay.pk, engine=runner)))
    return replay


class _NoEvents:
    """The replay's stand-in for the engine in its progress: events go nowhere."""

    async def publish(self, conversation_id: str, event: EngineEvent) -> None:
        return None


class RecordedTools:
    """A tool runner that answers calls from the recording and never runs a tool."""

    def __init__(self, recorded: dict[tuple[str, str], str]) -> None:
        self.recorded = recorded
        self.calls: list[dict[str, Any]] = []
        self.rounds = 0

    async def __call__(
        self, calls: list[dict[str, Any]], plan: turn_plan.TurnPlan, progress: TurnProgress, engine: Engine
    ) -> list[ToolCallResult] | Failure:
        self.rounds += 1
        outcomes = []
        for call in calls:
            key = (call.get("name", ""), _normalised(call.get("arguments", "")))
            output = self.recorded.get(key)
            self.calls.append({
                "name": key[0], "arguments": call.get("arguments", ""), "recorded_output": output,
                "round": self.rounds,
            })
            outcomes.append(ToolCallResult(call.get("call_id", ""), key[0], output or "", output is not None))
        if any(not outcome.ok for outcome in outcomes):
            return Failure(UNRECORDED, "The model asked for a tool call the recording cannot answer.")
        return outcomes


def _recorded_outputs(turn: Turn) -> dict[tuple[str, str], str]:
    """(tool name, normalised arguments) -> output, from every request the turn sent."""
    calls: dict[str, tuple[str, str]] = {}
    outputs: dict[tuple[str, str], str] = {}
    for request in turn.requests:
        for item in request.get("input", []):
            if not isinstance(item, dict):
                continue
            if item.get("type") == "function_call":
                calls[item.get("call_id", "")] = (item.get("name", ""), _normalised(item.get("arguments", "")))
            elif item.get("type") == "function_call_output" and item.get("call_id") in calls:
                outputs[calls[item["call_id"]]] = item.get("output", "")
    return outputs


def _normalised(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except (TypeError, ValueError):
        return arguments or ""


def _load(replay_id: Any) -> tuple[Replay, turn_plan.TurnPlan, dict[tuple[str, str], str]]:
    replay = Replay.objects.select_related("turn", "turn__conversation", "agent", "turn__agent").get(pk=replay_id)
    turn = replay.turn
    agent = replay.agent or turn.agent
    overrides = replay.overrides or {}
    plan, _ = replay_plan(
        turn=turn, agent=agent, model=replay.model if "model" in overrides else "",
        instructions=replay.instructions if overrides.get("instructions") else None, replay_id=replay.pk,
    )
    return replay, plan, _recorded_outputs(turn)


def _finish(replay_id: Any, fields: dict[str, Any]) -> None:
    Replay.objects.filter(pk=replay_id).update(finished_at=timezone.now(), **fields)


async def replay_run(replay_id: Any, *, engine: Engine) -> None:
    """Run a started replay to its end and store the outcome (never raises)."""
    try:
        replay, plan, recorded = await engine.db(_load, replay_id)
    except Exception:
        logger.exception("could not load replay %s", replay_id)
        return
    progress = TurnProgress(_NoEvents(), plan.conversation_id, f"replay-{replay_id}", 3600.0)
    tools = RecordedTools(recorded)
    fields: dict[str, Any] = {}
    try:
        failure = await run_rounds(plan, progress, engine, tools=tools)
    except Exception as exc:
        logger.exception("replay %s crashed", replay_id)
        failure = Failure("internal", f"Internal error: {type(exc).__name__}")
    answers = [item["text"] for item in progress.items if item["kind"] == MessageKind.ASSISTANT]
    if failure is None:
        fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.ANSWERED)
    elif failure.code == UNRECORDED:
        fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.UNRECORDED_TOOL_CALL)
    elif failure.code == TurnError.TOOL_ROUNDS:
        fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.TOOL_ROUNDS)
    else:
        fields.update(status=ReplayStatus.FAILED, error_code=failure.code, error_message=failure.message[:2000])
        answers = ["".join(progress.partial)] if progress.partial else answers
    audit = progress.audit(plan.model, finished_ok=failure is None)
    fields.update(
        requests=progress.requests or replay.requests,
        answer="\n\n".join(answers),
        tool_calls=tools.calls,
        response_ids=progress.response_ids,
        input_tokens=audit["input_tokens"],
        cached_tokens=audit["cached_tokens"],
        output_tokens=audit["output_tokens"],
        reasoning_tokens=audit["reasoning_tokens"],
        # The offline model answers whatever model is named, and costs nothing.
        cost=cost_for(OFFLINE_MODEL if is_offline(plan.agent) else plan.model, progress.usage),
        latency_ms=audit["latency_ms"],
        time_to_first_token_ms=audit["time_to_first_token_ms"],
    )
    try:
        await engine.db(_finish, replay_id, fields)
    except Exception:
        logger.exception("could not store replay %s", replay_id)
