"""The turn loop: orchestration only.

One turn answers one user message: load the plan (agent, history selection), then up to
`max_tool_rounds + 1` model rounds. Each round streams text out as coalesced deltas;
when the model asks for tools, they run concurrently and their outputs (with any
reasoning items, passed back as the provider returned them) go into the next round.
The turn ends when the model answers in text, fails, is cancelled, or exhausts its
rounds. Its items are stored atomically at the end with the audit; a failure stores
none of them, keeping partial text only in the audit. A context-length error is retried
once with half the history budget. The runner keeps its lease alive while it works and
stops without writing if the lease is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from conversations.agent import plan as turn_plan
from conversations.agent.events import (
    text_delta_event,
    tool_finished_event,
    tool_started_event,
    turn_started_event,
)
from conversations.agent.pricing import cost_for
from conversations.agent.provider import (
    ProviderFailure,
    Usage,
    client_for,
    model_label,
    stream_round,
)
from conversations.conf import platform_setting
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError
from conversations.services import turns as turn_services
from tools.registry import activity_for, execute_calls

logger = logging.getLogger(__name__)


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass
class _DeltaBuffer:
    """Coalesces text deltas into one event per flush interval."""

    engine: Any
    conversation_id: str
    turn_id: str
    interval: float
    pending: str = ""
    last_flush: float = 0.0

    async def add(self, delta: str) -> None:
        self.pending += delta
        now = time.monotonic()
        if now - self.last_flush >= self.interval:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            text, self.pending = self.pending, ""
            self.last_flush = time.monotonic()
            await self.engine.publish(
                self.conversation_id, text_delta_event(self.conversation_id, self.turn_id, text)
            )


def passback_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Output items to send back in the next round. A reasoning item goes back only
    with the item that followed it (the API rejects a dangling one)."""
    kept = []
    for index, item in enumerate(output):
        if item.get("type") == "reasoning" and index + 1 >= len(output):
            continue
        kept.append(_clean_output_item(item))
    return kept


def _clean_output_item(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "function_call":
        return {k: item[k] for k in ("type", "id", "call_id", "name", "arguments") if k in item}
    if kind == "reasoning":
        return {k: item[k] for k in ("type", "id", "summary", "encrypted_content") if k in item}
    if kind == "message":
        texts = [c.get("text", "") for c in item.get("content", []) if c.get("type") == "output_text"]
        return {"type": "message", "role": "assistant", "content": "".join(texts)}
    return item


def _message_text(item: dict[str, Any]) -> str:
    return "".join(
        part.get("text", "") for part in item.get("content", []) if part.get("type") == "output_text"
    )


async def run_turn(turn_id: Any, *, engine: Any) -> None:
    owner = engine.owner
    started = time.monotonic()
    audit: dict[str, Any] = {"requests": [], "response_ids": []}
    try:
        plan = await engine.db(turn_plan.turn_plan_load, turn_id=turn_id)
    except Exception as exc:
        logger.exception("could not plan turn %s", turn_id)
        await engine.db(
            turn_services.turn_fail, turn_id=turn_id, owner=owner, code=TurnError.INTERNAL,
            message=f"Could not prepare the turn: {type(exc).__name__}", audit=audit,
        )
        return
    conversation_id = plan.conversation_id
    audit.update(plan.audit())
    await engine.publish(
        conversation_id, turn_started_event(plan.turn, model_label=model_label(plan.model, plan.agent))
    )

    state = {"signal": "ok"}

    async def keep_lease() -> None:
        interval = max(0.2, platform_setting("TURN_LEASE_SECONDS") / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                signal = await engine.db(turn_services.turn_heartbeat, turn_id=turn_id, owner=owner)
            except Exception:
                # The database is briefly away: keep trying. If it stays away past the
                # lease, a sweeper fails the turn and the next heartbeat says "lost".
                logger.warning("lease renewal failed for turn %s", turn_id, exc_info=True)
                continue
            if signal != "ok":
                state["signal"] = signal
                return

    heartbeat = asyncio.create_task(keep_lease())
    deltas = _DeltaBuffer(
        engine, conversation_id, str(turn_id), platform_setting("DELTA_FLUSH_SECONDS")
    )
    usage = Usage()
    first_token: list[float] = []
    items: list[dict[str, Any]] = []
    partial: list[str] = []

    def check() -> None:
        if state["signal"] != "ok":
            raise _Stop(state["signal"])

    async def on_delta(delta: str) -> None:
        if not first_token:
            first_token.append(time.monotonic())
        partial.append(delta)
        check()
        await deltas.add(delta)

    async def on_call_started(item: dict[str, Any]) -> None:
        await deltas.flush()
        await engine.publish(
            conversation_id,
            tool_started_event(
                conversation_id, str(turn_id), call_id=item.get("call_id", ""),
                name=item.get("name", ""), activity=activity_for(item.get("name", "")),
            ),
        )

    def final_audit() -> dict[str, Any]:
        audit.update(
            input_tokens=usage.input_tokens,
            cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=cost_for(plan.model, usage),
            tool_rounds=max(0, len(audit["requests"]) - 1),
            latency_ms=int((time.monotonic() - started) * 1000),
            time_to_first_token_ms=int((first_token[0] - started) * 1000) if first_token else None,
            partial_text="".join(partial),
        )
        return audit

    client = client_for(plan.agent)
    input_items = list(plan.input_items)
    shrunk = False
    rounds = 0
    try:
        while True:
            check()
            request = plan.request(input_items)
            audit["requests"].append(request)
            try:
                result = await stream_round(client, request, on_delta, on_call_started)
            except ProviderFailure as failure:
                usage.add(failure.usage)
                if failure.response_id:
                    audit["response_ids"].append(failure.response_id)
                if failure.code == TurnError.CONTEXT_LENGTH and not shrunk:
                    shrunk = True
                    plan = await engine.db(plan.shrunk)
                    audit.update(plan.audit())
                    input_items = list(plan.input_items)
                    partial.clear()
                    continue
                await deltas.flush()
                await engine.db(
                    turn_services.turn_fail, turn_id=turn_id, owner=owner, code=failure.code,
                    message=failure.message, audit=final_audit(),
                )
                return
            await deltas.flush()
            usage.add(result.usage)
            audit["response_ids"].append(result.response_id)
            for item in result.output:
                if item.get("type") == "message" and _message_text(item):
                    items.append({"kind": MessageKind.ASSISTANT, "text": _message_text(item)})
            calls = [item for item in result.output if item.get("type") == "function_call"]
            if not calls:
                break
            if rounds >= plan.max_tool_rounds:
                await engine.db(
                    turn_services.turn_fail, turn_id=turn_id, owner=owner, code=TurnError.TOOL_ROUNDS,
                    message=f"The model was still calling tools after {plan.max_tool_rounds} rounds.",
                    audit=final_audit(),
                )
                return
            rounds += 1
            check()
            results = await execute_calls(
                calls, plan.tool_context, allowed=plan.tool_names,
                executor=engine.tool_executor, default_timeout=platform_setting("TOOL_TIMEOUT_SECONDS"),
            )
            outputs = []
            for call, outcome in zip(calls, results, strict=True):
                await engine.publish(
                    conversation_id,
                    tool_finished_event(conversation_id, str(turn_id), call_id=outcome.call_id, name=outcome.name, ok=outcome.ok),
                )
                items.append({
                    "kind": MessageKind.FUNCTION_CALL, "tool_name": call.get("name", ""),
                    "call_id": call.get("call_id", ""), "tool_arguments": call.get("arguments", ""),
                })
                items.append({
                    "kind": MessageKind.FUNCTION_OUTPUT, "tool_name": outcome.name,
                    "call_id": outcome.call_id, "text": outcome.output, "metadata": {"ok": outcome.ok},
                })
                outputs.append({"type": "function_call_output", "call_id": outcome.call_id, "output": outcome.output})
            input_items += passback_items(result.output) + outputs
        if not any(item["kind"] == MessageKind.ASSISTANT for item in items):
            await engine.db(
                turn_services.turn_fail, turn_id=turn_id, owner=owner, code=TurnError.PROVIDER_ERROR,
                message="The model returned no answer text.", audit=final_audit(),
            )
            return
        # Keep assistant text in output order relative to tool items of the same round.
        await engine.db(turn_services.turn_complete, turn_id=turn_id, owner=owner, items=items, audit=final_audit())
    except _Stop as stop:
        await deltas.flush()
        if stop.reason == "cancel":
            await engine.db(turn_services.turn_finish_cancelled, turn_id=turn_id, owner=owner, audit=final_audit())
        # "lost": another process or the sweeper owns the outcome now; write nothing.
    except Exception as exc:
        logger.exception("turn %s crashed", turn_id)
        await engine.db(
            turn_services.turn_fail, turn_id=turn_id, owner=owner, code=TurnError.INTERNAL,
            message=f"Internal error: {type(exc).__name__}", audit=final_audit(),
        )
    finally:
        heartbeat.cancel()
