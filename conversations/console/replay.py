"""Replay: re-run a turn's recorded request against another agent, model or instructions.

This is how staff try a prompt change on real cases before rolling it out. The replay
starts from `Turn.requests[0]`, the exact body the turn first sent, changes only what
the staff member asked for (another agent's model, instructions, tools and sampling
settings; or just a model name or instructions), and sends it through the same provider
client and streaming parser the turn runner uses (`provider.client_for`,
`provider.stream_round`).

It never touches the conversation: no Message or Turn row is written, no event is
published to the conversation's group, and no tool is executed (tools have side effects:
`handoff_to_human` pauses the AI). When the model asks for a tool call the recording
already answered (same tool, same arguments), the recorded output is fed back so the
replay can reach an answer; any other call ends the replay and is shown as requested.
The outcome is stored on a `Replay` row for the side-by-side page.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.agent.engine import Engine
from conversations.agent.engine import engine as default_engine
from conversations.agent.plan import OFFLINE_MODEL
from conversations.agent.pricing import cost_for
from conversations.agent.provider import ProviderFailure, Usage, client_for, is_offline, stream_round
from conversations.agent.runner import passback_items
from conversations.authorization import Action, authorize_turn
from conversations.conf import platform_setting
from conversations.console.models import Replay, ReplayStatus, ReplayStop
from conversations.errors import InvalidInput
from conversations.models import Agent, Turn
from tools.registry import definitions_for

logger = logging.getLogger(__name__)


def model_for(agent: Agent) -> str:
    """The model name a turn of `agent` would send (as the turn planner chooses it)."""
    if is_offline(agent):
        return OFFLINE_MODEL
    return agent.model or platform_setting("DEFAULT_MODEL")


def replay_request_build(
    *, turn: Turn, agent: Agent | None = None, model: str = "", instructions: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The body a replay sends first, and a description of what was changed.

    With `agent`, the agent's model, instructions, tools and sampling settings replace
    the recorded ones; `model` and `instructions` then override those. The input items
    (the selected history and the customer's message) are always the recorded ones."""
    if not turn.requests:
        raise InvalidInput("This turn never sent a request, so there is nothing to replay.")
    body = copy.deepcopy(turn.requests[0])
    overrides: dict[str, Any] = {}
    if agent is not None and agent.pk != turn.agent_id:
        overrides["agent"] = agent.name
        body["model"] = model_for(agent)
        for key in ("instructions", "tools", "tool_choice", "parallel_tool_calls", "temperature",
                    "max_output_tokens", "reasoning", "include"):
            body.pop(key, None)
        if agent.instructions:
            body["instructions"] = agent.instructions
        tools = definitions_for(list(agent.tools or []))
        if tools:
            body.update(tools=tools, tool_choice="auto", parallel_tool_calls=True)
        if agent.temperature is not None and not agent.reasoning_effort:
            body["temperature"] = agent.temperature
        if agent.max_output_tokens:
            body["max_output_tokens"] = agent.max_output_tokens
        if agent.reasoning_effort:
            body["reasoning"] = {"effort": agent.reasoning_effort}
            body["include"] = ["reasoning.encrypted_content"]
    if model.strip():
        overrides["model"] = model.strip()
        body["model"] = model.strip()
    if instructions is not None and instructions != body.get("instructions", ""):
        overrides["instructions"] = True
        if instructions.strip():
            body["instructions"] = instructions
        else:
            body.pop("instructions", None)
    body["stream"] = True
    body["store"] = False
    metadata = dict(body.get("metadata") or {})
    metadata["replay_of"] = str(turn.pk)
    body["metadata"] = metadata
    return body, overrides


def replay_start(
    *,
    turn: Turn,
    actor: Any,
    agent: Agent | None = None,
    model: str = "",
    instructions: str | None = None,
    engine: Engine | None = None,
) -> Replay:
    """Record a replay and start it on the engine after commit. Returns it running;
    `replay_run` fills in the outcome. `actor` is the acting principal (a staff user);
    refused unless it may replay turns of this conversation."""
    actor = authorize_turn(actor, Action.REPLAY, turn).staff_user
    body, overrides = replay_request_build(
        turn=turn, agent=agent, model=model, instructions=instructions
    )
    target = agent or turn.agent
    with transaction.atomic():
        replay = Replay.objects.create(
            turn=turn,
            actor=actor if getattr(actor, "pk", None) else None,
            agent=target,
            model=body.get("model", ""),
            instructions=body.get("instructions", ""),
            overrides=overrides,
            requests=[body],
        )
        runner = engine or default_engine
        transaction.on_commit(lambda: runner.submit(replay_run(replay.pk, engine=runner)))
    return replay


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


def _load(replay_id: Any) -> tuple[Replay, dict[tuple[str, str], str], int]:
    replay = Replay.objects.select_related("turn", "agent", "turn__agent").get(pk=replay_id)
    agent = replay.agent or replay.turn.agent
    return replay, _recorded_outputs(replay.turn), agent.max_tool_rounds


def _finish(replay_id: Any, fields: dict[str, Any]) -> None:
    Replay.objects.filter(pk=replay_id).update(finished_at=timezone.now(), **fields)


async def replay_run(replay_id: Any, *, engine: Engine) -> None:
    """Run a started replay to its end and store the outcome (never raises)."""
    started = time.monotonic()
    try:
        replay, recorded, max_rounds = await engine.db(_load, replay_id)
    except Exception:
        logger.exception("could not load replay %s", replay_id)
        return
    client = client_for(replay.agent or replay.turn.agent)
    first = dict(replay.requests[0])
    input_items = list(first.get("input", []))
    requests: list[dict[str, Any]] = []
    answer: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    response_ids: list[str] = []
    usage = Usage()
    first_token: list[float] = []
    fields: dict[str, Any] = {}

    async def on_delta(delta: str) -> None:
        if not first_token:
            first_token.append(time.monotonic())

    try:
        for round_number in range(max_rounds + 1):
            request = {**first, "input": list(input_items)}
            requests.append(request)
            result = await stream_round(client, request, on_delta)
            usage.add(result.usage)
            response_ids.append(result.response_id)
            if result.text:
                answer.append(result.text)
            calls = [item for item in result.output if item.get("type") == "function_call"]
            if not calls:
                fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.ANSWERED)
                break
            outputs = []
            for call in calls:
                key = (call.get("name", ""), _normalised(call.get("arguments", "")))
                output = recorded.get(key)
                tool_calls.append({
                    "name": key[0], "arguments": call.get("arguments", ""),
                    "recorded_output": output, "round": round_number + 1,
                })
                outputs.append({"type": "function_call_output", "call_id": call.get("call_id", ""), "output": output})
            if any(entry["output"] is None for entry in outputs):
                fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.UNRECORDED_TOOL_CALL)
                break
            if round_number >= max_rounds:
                fields.update(status=ReplayStatus.COMPLETED, stop_reason=ReplayStop.TOOL_ROUNDS)
                break
            input_items += passback_items(result.output) + outputs
    except ProviderFailure as failure:
        usage.add(failure.usage)
        if failure.response_id:
            response_ids.append(failure.response_id)
        if failure.partial_text:
            answer.append(failure.partial_text)
        fields.update(status=ReplayStatus.FAILED, error_code=failure.code, error_message=failure.message[:2000])
    except Exception as exc:
        logger.exception("replay %s crashed", replay_id)
        fields.update(status=ReplayStatus.FAILED, error_code="internal", error_message=f"Internal error: {type(exc).__name__}")
    fields.update(
        requests=requests or replay.requests,
        answer="\n\n".join(answer),
        tool_calls=tool_calls,
        response_ids=response_ids,
        input_tokens=usage.input_tokens,
        cached_tokens=usage.cached_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        # The offline model answers whatever model is named, and costs nothing.
        cost=cost_for(OFFLINE_MODEL if is_offline(replay.agent or replay.turn.agent) else replay.model, usage),
        latency_ms=int((time.monotonic() - started) * 1000),
        time_to_first_token_ms=int((first_token[0] - started) * 1000) if first_token else None,
    )
    try:
        await engine.db(_finish, replay_id, fields)
    except Exception:
        logger.exception("could not store replay %s", replay_id)
