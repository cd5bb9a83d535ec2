"""Generated history for the dashboard's benchmark and tests: agents, conversations,
their messages and turns spread over past days, written in bulk.

The shape is plausible rather than random noise: more traffic on weekdays, a few per
cent of turns failing with provider errors, log-normal latencies, some tool calls (some
failing), conversations handed off, taken over or answered by staff, and costs from the
real price table. The same seed gives the same data.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.agent.pricing import cost_for
from conversations.agent.provider import Usage
from conversations.models import Agent, Conversation, CsatRating, Handled, Message, Turn
from conversations.models.conversation import Channel, Status
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError, TurnStatus
from conversations.ops.facts import turn_facts_rebuild

BATCH = 2000
FAILURE_CODES = (
    (TurnError.TIMEOUT, 4),
    (TurnError.RATE_LIMITED, 3),
    (TurnError.STREAM_INTERRUPTED, 2),
    (TurnError.PROVIDER_ERROR, 2),
    (TurnError.TOOL_ROUNDS, 1),
)
TOOLS = (("lookup_order", 0.04), ("handoff_to_human", 0.0), ("search_knowledge", 0.08), ("refund_order", 0.15))


@dataclass
class Generated:
    conversations: int
    turns: int
    messages: int


@contextlib.contextmanager
def _keep_given_timestamps() -> Iterator[None]:
    """Let bulk_create write the timestamps we give instead of "now" (auto_now fields)."""
    fields = [
        Turn._meta.get_field("created_at"),
        Conversation._meta.get_field("created_at"),
        Conversation._meta.get_field("updated_at"),
        CsatRating._meta.get_field("created_at"),
    ]
    saved = [(f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, (auto_now, auto_now_add) in zip(fields, saved, strict=True):
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


def _agents() -> list[Agent]:
    specs = (("Sample: storefront", "gpt-4.1-mini"), ("Sample: billing", "gpt-4.1"))
    return [
        Agent.objects.get_or_create(name=name, defaults={"model": model, "tools": [t for t, _ in TOOLS]})[0]
        for name, model in specs
    ]


def _day_weights(days: int, end: datetime) -> list[float]:
    weights = []
    for offset in range(days):
        day = end - timedelta(days=days - offset)
        weights.append(0.55 if day.weekday() >= 5 else 1.0 + 0.1 * math.sin(offset))
    return weights


def generate(*, turns: int, days: int, seed: int = 7, end: datetime | None = None) -> Generated:
    """Write about `turns` turns spread over the `days` days before `end` (default now)."""
    rng = random.Random(seed)
    end = end or timezone.now()
    agents = _agents()
    weights = _day_weights(days, end)
    conversations: list[Conversation] = []
    plans: list[tuple[Conversation, int, datetime]] = []
    remaining = turns
    while remaining > 0:
        count = min(remaining, rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6)))
        remaining -= count
        day = rng.choices(range(days), weights)[0]
        start = end - timedelta(days=days - day) + timedelta(seconds=rng.uniform(0, 86400 - 3600))
        start = min(start, end - timedelta(hours=1))
        roll = rng.random()
        conversation = Conversation(
            agent=rng.choice(agents),
            customer_id=f"sample-{rng.randrange(10**9)}",
            channel=rng.choice((Channel.WIDGET, Channel.WIDGET, Channel.API)),
            created_at=start,
            updated_at=start,
            status=Status.RESOLVED if roll < 0.35 else Status.OPEN,
        )
        if roll > 0.9:  # handed off by the AI
            conversation.status = Status.WAITING_ON_STAFF
            conversation.ai_paused = True
            conversation.metadata = {"handoff_reason": "Customer asked for a person."}
        elif roll > 0.86:  # a staff member took over
            conversation.ai_paused = True
        conversations.append(conversation)
        plans.append((conversation, count, start))
    users, turn_rows, produced = _build_turns(rng, plans)
    _set_totals(conversations, turn_rows)
    ratings = _ratings(random.Random(seed + 1), plans)
    with transaction.atomic(), _keep_given_timestamps():
        Conversation.objects.bulk_create(conversations, batch_size=BATCH)
        Message.objects.bulk_create(users, batch_size=BATCH)
        Turn.objects.bulk_create(turn_rows, batch_size=BATCH)
        Message.objects.bulk_create(produced, batch_size=BATCH)
        CsatRating.objects.bulk_create(ratings, batch_size=BATCH)
        turn_facts_rebuild(turns=Turn.objects.filter(agent__in=agents, created_at__gte=end - timedelta(days=days + 1)))
    return Generated(conversations=len(conversations), turns=len(turn_rows), messages=len(users) + len(produced))


def _ratings(rng: random.Random, plans: list[tuple[Conversation, int, datetime]]) -> list[CsatRating]:
    """About half the resolved conversations rated, mostly happy, an hour after they
    started; all AI-only (the sample has no staff replies). A separate random stream,
    so the turns are the same with or without ratings."""
    ratings = []
    for conversation, _count, start in plans:
        if conversation.status != Status.RESOLVED:
            continue
        conversation.resolution = 1
        if rng.random() < 0.5:
            continue
        score = rng.choices((1, 2, 3, 4, 5), (5, 6, 12, 32, 45))[0]
        conversation.csat_score = score
        ratings.append(CsatRating(
            conversation=conversation, resolution=1, score=score, created_at=start + timedelta(hours=1),
            handled=Handled.AI,
        ))
    return ratings


def _turn_outcome(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.045:
        codes = [code for code, _ in FAILURE_CODES]
        return TurnStatus.FAILED, rng.choices(codes, [weight for _, weight in FAILURE_CODES])[0]
    if roll < 0.055:
        return TurnStatus.CANCELLED, ""
    return TurnStatus.COMPLETED, ""


def _build_turns(
    rng: random.Random, plans: list[tuple[Conversation, int, datetime]]
) -> tuple[list[Message], list[Turn], list[Message]]:
    user_messages: list[Message] = []
    turn_specs: list[dict[str, Any]] = []
    for conversation, count, start in plans:
        seq, at = 1, start
        for _ in range(count):
            user = Message(
                conversation=conversation, seq=seq, kind=MessageKind.USER, text="Sample question",
                token_count=12, created_at=at,
            )
            user_messages.append(user)
            status, error = _turn_outcome(rng)
            tools = [t for t in TOOLS if rng.random() < 0.3] if status == TurnStatus.COMPLETED else []
            seq += 1 + 2 * len(tools) + (1 if status == TurnStatus.COMPLETED else 0)
            latency = int(rng.lognormvariate(math.log(1800 + 900 * len(tools)), 0.45))
            ttft = int(min(latency, rng.lognormvariate(math.log(450), 0.5)))
            usage = Usage(
                input_tokens=rng.randint(600, 4000), cached_tokens=0,
                output_tokens=rng.randint(40, 400), reasoning_tokens=0,
            )
            usage.cached_tokens = int(usage.input_tokens * rng.choice((0, 0, 0.5, 0.8)))
            turn_specs.append({
                "user": user, "status": status, "error": error, "tools": tools, "at": at,
                "latency": latency, "ttft": ttft if status != TurnStatus.CANCELLED else None, "usage": usage,
            })
            at += timedelta(seconds=latency / 1000 + rng.uniform(20, 300))
        if conversation.ai_paused and not conversation.metadata:
            user_messages.append(Message(
                conversation=conversation, seq=seq, kind=MessageKind.STAFF, text="Staff reply",
                token_count=5, created_at=at,
            ))
            seq += 1
        conversation.next_seq = seq
    turns: list[Turn] = []
    produced: list[Message] = []
    for spec in turn_specs:
        user, usage = spec["user"], spec["usage"]
        conversation = user.conversation
        model = conversation.agent.model
        finished = spec["at"] + timedelta(milliseconds=spec["latency"])
        turn = Turn(
            conversation=conversation, user_message=user, agent=conversation.agent, model=model,
            status=spec["status"], error_code=spec["error"],
            error_message="Sample failure" if spec["error"] else "",
            input_tokens=usage.input_tokens, cached_tokens=usage.cached_tokens,
            output_tokens=usage.output_tokens, reasoning_tokens=usage.reasoning_tokens,
            cost=cost_for(model, usage), tool_rounds=1 if spec["tools"] else 0,
            latency_ms=spec["latency"], time_to_first_token_ms=spec["ttft"],
            created_at=spec["at"], started_at=spec["at"], finished_at=finished,
        )
        turns.append(turn)
        seq = user.seq + 1
        for name, error_rate in spec["tools"]:
            ok = rng.random() >= error_rate
            call_id = f"call_{rng.randrange(10**12)}"
            produced.append(Message(
                conversation=conversation, seq=seq, kind=MessageKind.FUNCTION_CALL, tool_name=name,
                call_id=call_id, tool_arguments="{}", turn=turn, created_at=finished, token_count=8,
            ))
            produced.append(Message(
                conversation=conversation, seq=seq + 1, kind=MessageKind.FUNCTION_OUTPUT, tool_name=name,
                call_id=call_id, text="{}" if ok else "Error: sample failure", turn=turn,
                created_at=finished, metadata={"ok": ok}, token_count=8,
            ))
            seq += 2
        if spec["status"] == TurnStatus.COMPLETED:
            produced.append(Message(
                conversation=conversation, seq=seq, kind=MessageKind.ASSISTANT, text="Sample answer",
                turn=turn, created_at=finished, token_count=usage.output_tokens,
            ))
    return user_messages, turns, produced


def _set_totals(conversations: list[Conversation], turns: list[Turn]) -> None:
    """The denormalised counters the message and turn services would have kept."""
    for conversation in conversations:
        conversation.message_count = conversation.next_seq - 1
    by_pk = {c.pk: c for c in conversations}
    for turn in turns:  # in creation order, so the last one per conversation wins below
        conversation = by_pk[turn.conversation_id]
        conversation.turn_count += 1
        for name in ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "cost"):
            setattr(conversation, name, getattr(conversation, name) + getattr(turn, name))
        conversation.has_failed_turn = turn.status == TurnStatus.FAILED
        assert turn.finished_at is not None  # every sample turn has finished
        conversation.last_message_at = turn.finished_at
        conversation.updated_at = turn.finished_at
