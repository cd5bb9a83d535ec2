"""The turn loop: orchestration only.

One turn answers one user message: load the plan (agent, history selection, tools),
then model rounds. Each round streams text out (`TurnProgress` coalesces and publishes
deltas); when the model asks for tools they run concurrently, and their outputs (with
any reasoning items, passed back as the provider returned them) go into the next round.
The turn ends when the model answers in text, fails, is cancelled, or exhausts its tool
rounds. Its items are stored atomically at the end with the audit; a failure stores
none of them and keeps the partial text in the audit only. A context-length error is
retried once with half the history budget.

The rounds run as a task guarded by the turn's lease (`LeaseKeeper`): a cancelled turn
stops at once and is recorded as cancelled; a turn whose lease was lost stops and
writes nothing, because the turn belongs to someone else now.

`run_rounds` is the one turn loop: the console's replay (`console/replay.py`) runs it
too, with the same plan and request builder, a progress whose events go nowhere, and
a tool runner that answers from the recording instead of running tools.

Everything the loop sends to the provider, and everything it takes back from it, passes
one boundary: the turn's `Redactor` (`redaction.py`, off unless the agent turns PII
redaction on) redacts the input items once (history, then each tool output), and
restores the real values in streamed deltas, commentary, the answer to store and the
tool calls before they run. Beside it, the turn's guardrails (`guardrails.py`) may refuse
the customer's message before the first request, and check the answer's text before the
customer sees it (streamed text passes their `OutputGate`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conversations import observers
from conversations.agent import plan as turn_plan
from conversations.agent.budgets import budget_enforce, budgets_active
from conversations.agent.events import turn_started_event
from conversations.agent.guardrails import TurnGuard
from conversations.agent.lease import CANCEL, LOST, LeaseKeeper
from conversations.agent.output import (
    answer_items,
    commentary_texts,
    function_calls,
    output_input_item,
    passback_items,
    tool_items,
)
from conversations.agent.progress import TurnProgress
from conversations.agent.provider import ProviderFailure, client_for, model_label, stream_round
from conversations.agent.redaction import Redactor
from conversations.agent.sources import attach_sources
from conversations.conf import platform_setting
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError
from conversations.services import leases as turn_services
from tools.registry import ToolCallResult, execute_calls

if TYPE_CHECKING:
    from conversations.agent.engine import Engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


# Runs one round's function calls: their outcomes (`ToolCallResult`s, in order), or a
# Failure that ends the rounds.
ToolRunner = Callable[
    [list[dict[str, Any]], "turn_plan.TurnPlan", TurnProgress, "Engine"], Awaitable["list[ToolCallResult] | Failure"]
]


async def run_tools(
    calls: list[dict[str, Any]], plan: turn_plan.TurnPlan, progress: TurnProgress, engine: Engine
) -> list[ToolCallResult] | Failure:
    """The real tool runner: the registry's tools, concurrently, each under a timeout."""
    return await execute_calls(
        calls, plan.tool_context, allowed=plan.tool_names, executor=engine.tool_executor,
        default_timeout=platform_setting("TOOL_TIMEOUT_SECONDS"), on_done=progress.tool_finished,
    )


# What `run_next_turn` learnt about the conversation's queue.
NOTHING_CLAIMED = "nothing_claimed"  # nothing this process could claim
MORE_QUEUED = "more_queued"  # a turn ran, and its completion saw another one queued
NONE_QUEUED = "none_queued"  # a turn ran, and its completion saw none queued
UNKNOWN = "unknown"  # a turn ran and ended otherwise: look before claiming again


async def run_next_turn(conversation_id: str, *, engine: Engine, dispatched: bool = False) -> str:
    """Claim the conversation's next queued turn for this process and run it to its
    end; returns what is known of the queue then (one of the four names above).
    `dispatched` says a turn is known to be queued, so the claim goes straight for
    the write lock."""
    claimed = await engine.db(
        turn_plan.turn_claim_and_plan, conversation_id=conversation_id, owner=engine.owner,
        check_first=not dispatched,
    )
    if claimed is None:
        return NOTHING_CLAIMED
    turn_id, plan = claimed
    if isinstance(plan, Exception):
        await engine.db(
            turn_services.turn_fail, turn_id=turn_id, owner=engine.owner, code=TurnError.INTERNAL,
            message=f"Could not prepare the turn: {type(plan).__name__}", audit={},
        )
        return UNKNOWN
    more = await run_turn(plan, engine=engine)
    return UNKNOWN if more is None else (MORE_QUEUED if more else NONE_QUEUED)


async def run_turn(plan: turn_plan.TurnPlan, *, engine: Engine) -> bool | None:
    """Run one claimed, planned turn to its end. Precondition: `engine.owner` holds its
    lease. Returns whether another turn of the conversation is queued, when the
    completion read it (None otherwise)."""
    owner = engine.owner
    turn_id = plan.turn.pk
    progress = TurnProgress(
        engine, plan.conversation_id, str(turn_id), platform_setting("DELTA_FLUSH_SECONDS")
    )
    progress.history = plan.audit()
    await engine.publish(
        plan.conversation_id,
        turn_started_event(plan.turn, model_label=model_label(plan.model, plan.agent)),
    )
    observers.turn_started(turn_id=turn_id, conversation_id=plan.conversation_id)  # e.g. log context
    # Over a budget limit the turn ends here with a polite message and a handoff.
    if budgets_active() and await engine.db(budget_enforce, plan=plan, owner=owner):
        return None

    lease = LeaseKeeper(engine, turn_id, owner)
    work = asyncio.create_task(run_rounds(plan, progress, engine))
    outcome: Failure | None
    with engine.running(turn_id, lease):
        try:
            signal = await lease.guard(work)
            outcome = None if signal else work.result()
        except Exception as exc:
            logger.exception("turn %s crashed", turn_id)
            signal, outcome = None, Failure(TurnError.INTERNAL, f"Internal error: {type(exc).__name__}")
    await progress.flush()

    if signal == LOST:
        progress.recorded("lost")  # the sweeper or another worker owns the outcome: write nothing
        return None
    audit = progress.audit(plan.model, finished_ok=signal is None and outcome is None)
    if signal == CANCEL:
        cancelled = await engine.db(
            turn_services.turn_finish_cancelled, turn_id=turn_id, owner=owner, audit=audit,
        )
        progress.recorded("cancelled" if cancelled else "lost")
    elif outcome is not None:
        failed = await engine.db(
            turn_services.turn_fail, turn_id=turn_id, owner=owner, code=outcome.code,
            message=outcome.message, audit=audit,
        )
        progress.recorded("failed" if failed else "lost")
    else:
        attach_sources(progress.items)  # knowledge-base citations into the answer's metadata
        stored, more_queued = await engine.db(
            turn_services.turn_complete_next, turn_id=turn_id, owner=owner, items=progress.items, audit=audit,
        )
        progress.recorded("completed" if stored is not None else "lost")
        return more_queued
    return None


async def run_rounds(
    plan: turn_plan.TurnPlan, progress: TurnProgress, engine: Engine, *, tools: ToolRunner = run_tools
) -> Failure | None:
    """The model rounds of one turn. Returns None when the model answered (the items to
    store are in `progress`), or why the turn failed."""
    client = client_for(plan.agent)
    guard = TurnGuard.for_agent(plan.agent)  # checks the real text, before redaction
    if guard.refuses_input(_customer_text(plan.input_items)):
        await _answer_refused(guard, progress, stage="input")
        return None
    privacy = Redactor.for_agent(plan.agent)  # one vault for the whole turn
    history = privacy.history(guard.history(plan.input_items))
    produced: list[dict[str, Any]] = []  # this turn's own input items (calls, outputs, reasoning)
    shrunk = False
    while True:
        request = plan.request(history + produced)
        progress.request_sent(request)
        progress.redactions = privacy.summary() if privacy.active else None
        gate = guard.gate(progress.text_delta)  # restored text reaches the customer once checked
        try:
            with progress.provider_call():
                async with privacy.restoring(gate.feed, progress.commentary) as (on_text, on_commentary):
                    result = await stream_round(client, request, on_text, progress.tool_started, on_commentary)
                await gate.close()
        except ProviderFailure as failure:
            progress.response_received(failure.response_id, failure.usage)
            progress.round_finished(failure)
            if failure.code == TurnError.CONTEXT_LENGTH and not shrunk and plan.shrinkable:
                shrunk = True
                plan = await engine.db(plan.shrunk)
                progress.history = plan.audit()
                history = privacy.history(guard.history(plan.input_items))
                progress.restart_text()
                continue
            return Failure(failure.code, failure.message)
        await progress.flush()
        progress.response_received(result.response_id, result.usage)
        progress.round_finished(result, commentary=[privacy.restore(t) for t in commentary_texts(result.output)])
        answers = privacy.restore_answers(answer_items(result.output))
        if any(guard.refuses_output(answer["text"]) for answer in answers):
            await _answer_refused(guard, progress, stage="output")
            return None  # no tool of this round runs either
        progress.items += answers
        calls = function_calls(result.output)
        if not calls:
            break
        if progress.tool_rounds >= plan.max_tool_rounds:
            return Failure(
                TurnError.TOOL_ROUNDS,
                f"The model was still calling tools after {plan.max_tool_rounds} rounds.",
            )
        progress.tool_rounds += 1
        real_calls = [privacy.restore_call(call) for call in calls]  # tools act on the real values
        outcomes = await tools(real_calls, plan, progress, engine)
        if isinstance(outcomes, Failure):
            return outcomes
        for call, outcome in zip(real_calls, outcomes, strict=True):
            progress.items += tool_items(call, outcome)
        # The calls go back as the model wrote them (placeholders), the outputs redacted.
        produced += passback_items(result.output) + privacy.items(output_input_item(o) for o in outcomes)
    if not any(item["kind"] == MessageKind.ASSISTANT for item in progress.items):
        return Failure(TurnError.PROVIDER_ERROR, "The model returned no answer text.")
    progress.guardrails = guard.audit() if guard.active else None
    return None


def _customer_text(input_items: list[dict[str, Any]]) -> str:
    """The customer message this turn answers: the last user item of its input."""
    for item in reversed(input_items):
        if item.get("role") == "user" and isinstance(item.get("content"), str):
            return item["content"]
    return ""


async def _answer_refused(guard: TurnGuard, progress: TurnProgress, *, stage: str) -> None:
    """End the turn with the agent's guardrail reply instead of the model's answer (or
    before asking the model at all): the customer sees the reply, the audit the refusal."""
    progress.items = [item for item in progress.items if item["kind"] != MessageKind.ASSISTANT]
    progress.items.append({"kind": MessageKind.ASSISTANT, "text": guard.reply, "metadata": {"guardrail": stage}})
    progress.guardrails = guard.audit()
    await progress.text_delta(guard.reply)
    await progress.flush()
