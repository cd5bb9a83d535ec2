"""The turn services alone, without the engine: thread CPU per `message_post`, `turn_claim`
and `turn_complete` on a scratch copy of the database (events and dispatches go nowhere).

    DJANGO_DEBUG=false .venv/bin/python bench/services.py [CALLS] [cProfile sort, e.g. cumulative]
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")

import django

django.setup()

from django.conf import settings  # noqa: E402

from conversations.agent.agents import agent_cached  # noqa: E402
from conversations.management.commands.bench_engine import scratch_database  # noqa: E402
from conversations.models import Agent  # noqa: E402
from conversations.services import engine_port  # noqa: E402
from conversations.services.conversations import conversation_create  # noqa: E402
from conversations.services.leases import turn_claim, turn_complete  # noqa: E402
from conversations.services.messages import message_post  # noqa: E402


class _Nowhere:
    def publish_soon(self, conversation_id: Any, event: Any) -> None: ...

    def dispatch(self, conversation_id: Any) -> None: ...

    def interrupt(self, turn_id: Any, signal: str = "cancel") -> None: ...


def _audit() -> dict[str, Any]:
    body = {"model": "gpt-4.1-mini", "input": [{"role": "user", "content": "x" * 200}] * 10}
    return {
        "requests": [body], "response_ids": ["resp_1"], "input_tokens": 50, "cached_tokens": 0, "output_tokens": 3,
        "reasoning_tokens": 0, "cost": 0.0001, "tool_rounds": 0, "latency_ms": 120, "time_to_first_token_ms": 40,
        "partial_text": "", "model": "gpt-4.1-mini", "history_budget": 8000, "history_tokens": 300,
    }


def main(calls: int, sort: str) -> None:
    settings.DEBUG = False
    engine_port.engine_port_register(_Nowhere())
    with scratch_database():
        agent = Agent.objects.create(name="A", model="gpt-4.1-mini", is_default=True, tools=["lookup_order"])
        agent_cached(agent.pk)
        spent = {"post": 0.0, "claim": 0.0, "complete": 0.0}
        profile = cProfile.Profile()
        answer = [{"kind": "assistant", "text": "It ships tomorrow. " * 5}]
        for index in range(calls + 20):  # 20 warm-up rounds
            if index % 100 == 0:
                conversation = conversation_create(agent=agent, channel="api")
            if index == 20 and sort:
                profile.enable()
            started = time.thread_time()
            message_post(conversation=conversation, text="Where is my order 1001 please?")
            posted = time.thread_time()
            turn = turn_claim(conversation_id=conversation.pk, owner="bench", check_first=False)
            assert turn is not None
            claimed = time.thread_time()
            turn_complete(turn_id=turn.pk, owner="bench", items=answer, audit=_audit())  # type: ignore[arg-type]
            completed = time.thread_time()
            if index >= 20:
                spent["post"] += posted - started
                spent["claim"] += claimed - posted
                spent["complete"] += completed - claimed
        profile.disable()
    figures = ", ".join(f"{name} {seconds * 1000 / calls:.3f}" for name, seconds in spent.items())
    print(f"thread CPU ms per call: {figures}; load average {os.getloadavg()[0]:.1f}")
    if sort:
        pstats.Stats(profile).sort_stats(sort).print_stats(45)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 300, sys.argv[2] if len(sys.argv) > 2 else "")
