"""`manage.py bench_prompt_cache`: how much of each turn's prompt a provider can serve
from its prompt cache, once a conversation is longer than its history budget.

On a scratch copy of the configured database (created, migrated and dropped here),
`--conversations` conversations of `--exchanges` exchanges each are answered turn by
turn, interleaved, through the real engine and the official SDK. The provider is an
in-process one that simulates OpenAI's prompt cache (`wire.PromptCache`: the longest
common prefix with the previous request of the same `prompt_cache_key`, nothing under
1,024 tokens, then steps of 128, over a crude tokenisation of instructions, tools and
input in order). For the turns whose conversation already exceeds the agent's history
budget it prints the share of input tokens that were cached, for each history layout
(`stable`: the previous selection extended, see `history.py`; `sliding`: selected
afresh every turn, as before) and each cache key scope (one key per conversation, or
one per agent).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import statistics
from collections.abc import AsyncIterator
from typing import Any

import httpx2
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.agent import wire
from conversations.agent.engine import engine
from conversations.agent.events import group_name
from conversations.agent.provider import register_transport
from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS
from conversations.management.commands.bench_engine import WORDS, scratch_database
from conversations.models import Agent, Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post

BENCH_URL = "http://bench-cache-provider.internal/v1"
KEY_ENV = "SUPPORT_BENCH_CACHE_PROVIDER_KEY"
INSTRUCTIONS = (
    "You are the support assistant of a small online shop selling coffee equipment. "
    "Answer politely and briefly, check orders with the lookup tool before promising "
    "anything, never invent tracking numbers, and hand over to a person when asked. "
) * 6


class CachingProvider(httpx2.AsyncBaseTransport):
    """Answers with a short streamed text; usage from the simulated prompt cache."""

    cache = wire.PromptCache()
    rng = random.Random(11)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(await request.aread())
        input_tokens, cached = self.cache.usage(body)
        words = [w + " " for w in _sentence(self.rng, 20, 80).split()]
        writer = wire.EventWriter(body)
        events = [*writer.created(), *writer.message(words), writer.completed(wire.usage(input_tokens, len(words), cached))]
        payload = b"".join(wire.sse(event) for event in events)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=_OneChunk(payload))


class _OneChunk(httpx2.AsyncByteStream):
    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.payload


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


class Command(BaseCommand):
    help = "Measure the prompt-cache hit share of turns past the history budget."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--exchanges", type=int, default=300)
        parser.add_argument("--conversations", type=int, default=2)
        parser.add_argument("--budget", type=int, default=8000)
        parser.add_argument("--layouts", default="stable,sliding")
        parser.add_argument("--scopes", default="conversation,agent")

    def handle(self, *args: Any, **options: Any) -> None:
        settings.DEBUG = False
        logging.disable(logging.INFO)  # one line per turn otherwise
        os.environ[KEY_ENV] = "bench"
        register_transport(BENCH_URL, CachingProvider)
        base = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0}
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.stdout.write(
            f"{options['conversations']} conversations x {options['exchanges']} exchanges, history budget "
            f"{options['budget']} tokens; {os.cpu_count()} CPUs, load average {load}"
        )
        with scratch_database():  # one for all runs: the engine's threads keep their connections
            self._runs(options, base)

    def _runs(self, options: dict[str, Any], base: dict[str, Any]) -> None:
        for layout in options["layouts"].split(","):
            for scope in options["scopes"].split(","):
                settings.SUPPORT_PLATFORM = {
                    **base, "STABLE_HISTORY_PREFIX": layout == "stable", "PROMPT_CACHE_KEY_SCOPE": scope,
                }
                CachingProvider.cache = wire.PromptCache()
                figures = self._run(options, f"{layout}/{scope}")
                self.stdout.write(
                    f"layout {layout:<7} key per {scope:<12}: past the budget {figures['turns']} turns, "
                    f"cached {figures['share']:.1%} of input tokens "
                    f"(per turn median {figures['median']:.1%}, p10 {figures['p10']:.1%}); "
                    f"history sent: mean {figures['history']:.0f} tokens"
                )
        settings.SUPPORT_PLATFORM = base

    def _run(self, options: dict[str, Any], label: str) -> dict[str, float]:
        Agent.objects.filter(is_default=True).update(is_default=False)
        agent = Agent.objects.create(
            name=f"Cache bench agent {label}", instructions=INSTRUCTIONS, tools=["lookup_order", "handoff_to_human"],
            provider_base_url=BENCH_URL, provider_api_key_env=KEY_ENV, model="gpt-4.1-mini",
            history_token_budget=options["budget"], is_default=True,
        )
        asyncio.run(self._turns(agent, options["conversations"], options["exchanges"]))
        past: list[tuple[int, int, int]] = []
        for turn in Turn.objects.filter(agent=agent).select_related("user_message").order_by("created_at"):
            before = sum(
                tokens + ITEM_OVERHEAD_TOKENS
                for tokens in Message.objects.filter(
                    conversation_id=turn.conversation_id, seq__lt=turn.user_message.seq
                ).values_list("token_count", flat=True)
            )
            if before > options["budget"]:
                past.append((turn.input_tokens, turn.cached_tokens, turn.history_tokens))
        ratios = sorted(cached / total for total, cached, _ in past if total)
        return {
            "turns": len(past),
            "share": sum(c for _, c, _ in past) / max(1, sum(t for t, _, _ in past)),
            "median": statistics.median(ratios) if ratios else 0.0,
            "p10": ratios[len(ratios) // 10] if ratios else 0.0,
            "history": statistics.mean(h for _, _, h in past) if past else 0.0,
        }

    async def _turns(self, agent: Agent, conversations: int, exchanges: int) -> None:
        engine.bind()
        layer = get_channel_layer()
        rng = random.Random(5)
        opened = []
        for _ in range(conversations):
            conversation = await engine.db(conversation_create, agent=agent, channel="api")
            channel = await layer.new_channel()
            await layer.group_add(group_name(conversation.pk), channel)
            opened.append((conversation, channel))
        for _ in range(exchanges):
            for conversation, channel in opened:
                posted = await engine.db(message_post, conversation=conversation, text=_sentence(rng, 8, 40))
                assert posted.turn is not None  # a customer message always queues a turn here
                turn_id = str(posted.turn.id)
                while True:
                    event = (await layer.receive(channel))["event"]
                    if event.get("turn") == turn_id and event["type"] in ("turn.completed", "turn.failed"):
                        break
                if event["type"] == "turn.failed":
                    raise RuntimeError(f"bench turn failed: {event['error']}")
        await engine.wait_idle()
