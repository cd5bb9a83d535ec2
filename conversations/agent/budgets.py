"""Budget limits: stop a runaway conversation (or customer) politely and hand it to staff.

Four limits, each over the last 24 hours and off when 0 (settings `SUPPORT_PLATFORM`,
environment `SUPPORT_BUDGET_*`): tokens (input + output) and cost per conversation, and
tokens and cost per customer (all conversations with the same customer kind and id).

The turn runner calls `budget_enforce` once, after loading the turn's plan and before
the first model call. Under every limit it returns False and the turn runs. At or over a
limit it ends the turn without calling the model: the turn completes with one assistant
message (`BUDGET_MESSAGE`, a polite "a person will reply"), its `error_code` says
`budget` and its `error_message` which limit and how much was used, and the conversation
is handed off (waiting on staff, AI paused, so later messages queue no turns). The turn
that crosses a limit finishes normally; the next one is stopped. A staff member who
hands the conversation back to the AI has decided it may go on: usage then counts from
the hand-back (or 24 hours ago, whichever is later), for both scopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from conversations import observers
from conversations.conf import platform_setting
from conversations.models import StaffAction, Turn
from conversations.models.message import MessageKind
from conversations.models.turn import AttemptAudit, TurnError, TurnStatus
from conversations.services.conversations import conversation_handoff
from conversations.services.leases import turn_complete

if TYPE_CHECKING:
    from conversations.agent.plan import TurnPlan

WINDOW = timedelta(hours=24)

# (limit name, setting, scope, measure)
LIMITS = (
    ("conversation_tokens_per_day", "BUDGET_CONVERSATION_TOKENS_PER_DAY", "conversation", "tokens"),
    ("conversation_cost_per_day", "BUDGET_CONVERSATION_COST_PER_DAY", "conversation", "cost"),
    ("customer_tokens_per_day", "BUDGET_CUSTOMER_TOKENS_PER_DAY", "customer", "tokens"),
    ("customer_cost_per_day", "BUDGET_CUSTOMER_COST_PER_DAY", "customer", "cost"),
)


@dataclass(frozen=True)
class BudgetBreach:
    limit: str
    scope: str
    measure: str
    used: Decimal
    allowed: Decimal

    @property
    def explanation(self) -> str:
        who = "this conversation" if self.scope == "conversation" else "this customer"
        if self.measure == "tokens":
            amount, cap = f"{int(self.used):,} tokens", f"{int(self.allowed):,}"
        else:
            amount, cap = _money(self.used), _money(self.allowed)
        return f"Budget limit reached: {who} used {amount} in the last 24 hours (limit {cap})."


def _money(value: Decimal) -> str:
    return f"${value:,.2f}" if value >= 1 else "$" + f"{value:.6f}".rstrip("0").rstrip(".")


def budget_usage(*, turns: Any) -> tuple[Decimal, Decimal]:
    """Tokens (input + output) and cost of the given turns."""
    totals = turns.aggregate(tokens=Sum(F("input_tokens") + F("output_tokens")), cost=Sum("cost"))
    return Decimal(totals["tokens"] or 0), Decimal(str(totals["cost"] or 0))


def budgets_active() -> bool:
    """True when any budget limit is configured (the runner skips the check otherwise)."""
    return any(platform_setting(limit[1]) for limit in LIMITS)


def budget_check(*, turn: Turn) -> BudgetBreach | None:
    """The first limit the turn's conversation or customer has reached, or None."""
    active = [limit for limit in LIMITS if platform_setting(limit[1])]
    if not active:
        return None
    conversation = turn.conversation
    since = timezone.now() - WINDOW
    handed_back = (
        StaffAction.objects.filter(conversation=conversation, action="hand_back")
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if handed_back and handed_back > since:
        since = handed_back
    recent = Turn.objects.filter(created_at__gte=since).exclude(pk=turn.pk)
    usage: dict[str, tuple[Decimal, Decimal]] = {}
    for name, setting, scope, measure in active:
        if scope not in usage:
            if scope == "conversation":
                scoped = recent.filter(conversation_id=conversation.pk)
            else:
                scoped = recent.filter(
                    conversation__customer_kind=conversation.customer_kind,
                    conversation__customer_id=conversation.customer_id,
                )
            usage[scope] = budget_usage(turns=scoped)
        tokens, cost = usage[scope]
        used = tokens if measure == "tokens" else cost
        allowed = Decimal(str(platform_setting(setting)))
        if used >= allowed:
            return BudgetBreach(limit=name, scope=scope, measure=measure, used=used, allowed=allowed)
    return None


def budget_enforce(*, plan: TurnPlan, owner: str) -> bool:
    """The runner's hook: True when a budget limit stopped the turn (the caller must not
    call the model), False when the turn may run. See the module docstring."""
    breach = budget_check(turn=plan.turn)
    if breach is None:
        return False
    with transaction.atomic():
        # Mark why first (and check the caller still owns the turn), so the completed
        # turn is recorded, counted and audited as a budget stop.
        owned = Turn.objects.filter(
            pk=plan.turn.pk, status=TurnStatus.RUNNING, lease_owner=owner
        ).update(error_code=TurnError.BUDGET, error_message=breach.explanation)
        if not owned:
            return True
        audit: AttemptAudit = {**plan.audit(), "requests": [], "response_ids": [], "latency_ms": 0}
        item = {
            "kind": MessageKind.ASSISTANT,
            "text": platform_setting("BUDGET_MESSAGE"),
            "metadata": {"budget_limit": breach.limit},
        }
        if turn_complete(turn_id=plan.turn.pk, owner=owner, items=[item], audit=audit) is None:
            return True
        conversation_handoff(conversation=plan.turn.conversation, reason=breach.explanation)
        observers.budget_stopped(breach.limit)
    return True
