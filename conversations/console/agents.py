"""Saving an agent from the console, keeping exactly one default agent."""

from __future__ import annotations

from django.db import transaction

from conversations.models import Agent


def agent_save(*, agent: Agent, make_default: bool) -> Agent:
    """Save the agent; with `make_default` it becomes the default and the previous
    default stops being one, in one transaction (the one-default constraint holds)."""
    with transaction.atomic():
        if make_default:
            Agent.objects.filter(is_default=True).exclude(pk=agent.pk).update(is_default=False)
        agent.is_default = make_default
        agent.save()
    return agent
