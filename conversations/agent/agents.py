"""A per-process cache of `Agent` rows for the turn path.

Every turn needs its agent's settings, and every stored item its model's encoding;
reading the row each time cost a join on the hottest queries. Agents change rarely
and only through a person (admin, API), so the engine keeps them for a few seconds:
an edit saved in this process applies to the next turn (a `post_save` signal drops
the entry), an edit saved by another process within `TTL_SECONDS`, and a queryset
`.update()` (which sends no signal) within `TTL_SECONDS` too. Cached instances are
shared between threads: treat them as read-only.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.db.models.signals import post_delete, post_save

from conversations.models import Agent

TTL_SECONDS = 5.0
_entries: dict[int, tuple[float, Agent]] = {}
_lock = threading.Lock()


def agent_cached(agent_id: int) -> Agent:
    """The agent row, at most `TTL_SECONDS` old (see the module docstring)."""
    now = time.monotonic()
    entry = _entries.get(agent_id)
    if entry is not None and now - entry[0] < TTL_SECONDS:
        return entry[1]
    agent = Agent.objects.get(pk=agent_id)
    with _lock:
        _entries[agent_id] = (now, agent)
    return agent


def agent_forget(agent_id: int | None = None) -> None:
    """Drop one cached agent, or all of them."""
    with _lock:
        if agent_id is None:
            _entries.clear()
        else:
            _entries.pop(agent_id, None)


def _on_change(sender: Any, instance: Agent, **kwargs: Any) -> None:
    agent_forget(instance.pk)


post_save.connect(_on_change, sender=Agent, dispatch_uid="conversations.agent.agents.save")
post_delete.connect(_on_change, sender=Agent, dispatch_uid="conversations.agent.agents.delete")
