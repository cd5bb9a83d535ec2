"""Everything a turn needs before its first model call, loaded in one database job
(together with the claim): the agent's settings, the selected history, the tools, and
the request builder.

`TurnPlan.request` is the one request builder: real turns, replays and the agent's
try-it panel all send what it builds. What a model accepts comes from the capability
table (`capabilities.py`), never from the agent's form alone: sampling parameters only
where the model takes them, `include: ["reasoning.encrypted_content"]` on every
reasoning model. Each body carries a `prompt_cache_key` (stable per agent and
conversation, so the provider routes a conversation's turns to the same cache) and a
`safety_identifier` (a keyed HMAC of the customer's identity, never the raw id or
email).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Subquery

from conversations.agent.agents import agent_cached
from conversations.agent.capabilities import UNKNOWN, ModelCapabilities, capabilities_for, describe
from conversations.agent.history import HistorySelection, select_history
from conversations.agent.provider import is_offline
from conversations.conf import platform_setting
from conversations.models import Agent, Turn
from conversations.models.turn import AttemptAudit, TurnStatus
from conversations.services.leases import TURN_PLAN_FIELDS, turn_claim
from tools.registry import ToolContext, definitions_for

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline-support-1"


@dataclass(frozen=True)
class TurnPlan:
    turn: Turn
    agent: Agent
    conversation_id: str
    model: str
    budget: int
    selection: HistorySelection
    tool_names: list[str]
    tool_definitions: list[dict[str, Any]]
    tool_context: ToolContext
    max_tool_rounds: int
    capabilities: ModelCapabilities = UNKNOWN
    metadata: dict[str, str] = field(default_factory=dict)  # added to each request's metadata
    shrinkable: bool = True  # may retry with half the history after a context-length error

    @property
    def input_items(self) -> list[dict[str, Any]]:
        return list(self.selection.input_items)

    def request(self, input_items: list[dict[str, Any]]) -> dict[str, Any]:
        """The exact body sent for one round (recorded verbatim on the Turn)."""
        agent = self.agent
        caps = self.capabilities
        effort = agent.reasoning_effort or ""
        body: dict[str, Any] = {
            "model": self.model,
            # A copy: the runner extends its list in later rounds, and the audit must keep
            # each round's body exactly as it was sent.
            "input": list(input_items),
            "store": False,
            "stream": True,
        }
        if agent.instructions:
            body["instructions"] = agent.instructions
        if self.tool_definitions:
            body["tools"] = self.tool_definitions
            body["tool_choice"] = "auto"
            body["parallel_tool_calls"] = True
        if agent.temperature is not None and caps.accepts_sampling("temperature", effort):
            body["temperature"] = agent.temperature
        if agent.max_output_tokens:
            body["max_output_tokens"] = min(agent.max_output_tokens, caps.max_output_tokens)
        if caps.is_reasoning(effort):
            if effort and effort in caps.efforts:
                body["reasoning"] = {"effort": effort}
            # With store=False the provider keeps nothing: the encrypted reasoning must
            # come back to us so the tool loop can pass it back (never as a bare id).
            body["include"] = ["reasoning.encrypted_content"]
        body["prompt_cache_key"] = cache_key(agent.pk, self.conversation_id)
        identifier = safety_identifier(self.tool_context.customer_kind, self.tool_context.customer_id)
        if identifier:
            body["safety_identifier"] = identifier
        body["metadata"] = {"conversation": self.conversation_id, "turn": str(self.turn.id), **self.metadata}
        return body

    def audit(self) -> AttemptAudit:
        return {
            "history": self.selection.explanation,
            "history_budget": self.budget,
            "history_tokens": self.selection.tokens,
            "model": self.model,
            "capabilities": describe(self.capabilities),
        }

    def shrunk(self) -> TurnPlan:
        """The same plan with half the history budget (after a context-length error)."""
        budget = max(1, self.budget // 2)
        selection = select_history(
            conversation_id=self.conversation_id, current=self.turn.user_message, budget=budget
        )
        return replace(self, budget=budget, selection=selection)


def turn_plan_load(*, turn_id: UUID | str) -> TurnPlan:
    turns = Turn.objects.select_related("conversation", "user_message").only(*TURN_PLAN_FIELDS)
    return turn_plan_for(turns.get(pk=turn_id))


def turn_plan_for(turn: Turn) -> TurnPlan:
    """The plan for `turn`, whose conversation and user message are loaded."""
    agent = agent_cached(turn.agent_id)
    conversation = turn.conversation
    model = OFFLINE_MODEL if is_offline(agent) else (agent.model or platform_setting("DEFAULT_MODEL"))
    budget = agent.history_token_budget
    selection = select_history(
        conversation_id=conversation.pk, current=turn.user_message, budget=budget,
        previous=previous_selection(turn),
    )
    tool_names = list(agent.tools or [])
    return TurnPlan(
        turn=turn,
        agent=agent,
        conversation_id=str(conversation.pk),
        model=model,
        budget=budget,
        selection=selection,
        tool_names=tool_names,
        tool_definitions=definitions_for(tool_names),
        tool_context=ToolContext(
            conversation_id=str(conversation.pk),
            customer_id=conversation.customer_id,
            customer_kind=conversation.customer_kind,
            customer_email=conversation.customer_email,
            metadata=dict(conversation.metadata),
            agent_id=agent.pk,
            turn_id=str(turn.pk),
        ),
        max_tool_rounds=agent.max_tool_rounds,
        capabilities=capabilities_for(model, agent.model_capabilities or None),
    )


def previous_selection(turn: Turn) -> list[dict[str, Any]] | None:
    """The history the conversation's previous turn sent (its recorded selection), so
    this turn can send the same prefix again (see `history.py`, "Stable prefix")."""
    if not platform_setting_or("STABLE_HISTORY_PREFIX", True):
        return None
    # The previous turn is found by its id, in a subquery, and only its history is read:
    # ordering the turns with their `history` column made SQLite sort every earlier
    # turn's recorded selection (tens of KB each) to keep one.
    previous = (
        Turn.objects.filter(conversation_id=turn.conversation_id, created_at__lte=turn.created_at)
        .exclude(pk=turn.pk)
        .exclude(status__in=[TurnStatus.QUEUED, TurnStatus.RUNNING])
        .order_by("-created_at")
        .values("pk")[:1]
    )
    return Turn.objects.filter(pk=Subquery(previous)).values_list("history", flat=True).first() or None


def platform_setting_or(name: str, default: Any) -> Any:
    return settings.SUPPORT_PLATFORM.get(name, default)


def cache_key(agent_id: int, conversation_id: UUID | str) -> str:
    """The `prompt_cache_key`: one per agent and conversation by default. A
    conversation's requests share their prefix (instructions, tools, its stable
    history), other conversations' do not, so one key per conversation keeps the
    provider's cache routing on the requests that can hit; `PROMPT_CACHE_KEY_SCOPE =
    "agent"` shares one key per agent (compare with `manage.py bench_prompt_cache`)."""
    if platform_setting_or("PROMPT_CACHE_KEY_SCOPE", "conversation") == "agent":
        return f"agent-{agent_id}"
    return f"agent-{agent_id}-conv-{conversation_id}"


def safety_identifier(customer_kind: str, customer_id: str) -> str:
    """A stable, keyed hash of the customer's identity for the provider's abuse
    detection: never the raw id or email, and not reversible without SECRET_KEY."""
    if not customer_id:
        return ""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"safety:{customer_kind}:{customer_id}".encode(), hashlib.sha256
    )
    return "sid-" + digest.hexdigest()[:48]


def turn_claim_and_plan(
    *, conversation_id: UUID | str, owner: str, check_first: bool = True
) -> tuple[Any, TurnPlan | Exception] | None:
    """Claim the conversation's next turn for `owner` and plan it, in one database job.
    None when there is nothing to run; `(turn_id, exception)` when the claimed turn
    could not be planned (the caller fails it)."""
    turn = turn_claim(conversation_id=conversation_id, owner=owner, check_first=check_first)
    if turn is None:
        return None
    try:
        return turn.pk, turn_plan_for(turn)
    except Exception as exc:
        logger.exception("could not plan turn %s", turn.pk)
        return turn.pk, exc
