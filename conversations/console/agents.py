"""Saving an agent from the console, keeping exactly one default agent, and refusing
settings its model cannot take (the capability table, `agent/capabilities.py`), PII
patterns (`agent/redaction.py`) and guardrail patterns (`agent/guardrails.py`) that are
not valid."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from conversations.agent.capabilities import agent_problems
from conversations.agent.guardrails import patterns_problem as blocked_patterns_problem
from conversations.agent.redaction import patterns_problem
from conversations.conf import platform_setting
from conversations.errors import InvalidInput
from conversations.models import Agent


def agent_model_problems(agent: Any) -> dict[str, str]:
    """Field -> why the agent's settings cannot work with its model (empty when fine).
    A blank model is checked against the deployment's default model."""
    return agent_problems(agent, agent.model or platform_setting("DEFAULT_MODEL"))


def agent_settings_problems(agent: Any) -> dict[str, str]:
    """Field -> why the agent cannot be saved so: its model's problems, invalid PII
    patterns (`redaction.patterns_problem`) and invalid blocked patterns
    (`guardrails.patterns_problem`)."""
    problems = agent_model_problems(agent)
    pattern_problem = patterns_problem(agent.pii_patterns)
    if pattern_problem:
        problems["pii_patterns"] = pattern_problem
    for name in ("blocked_input_patterns", "blocked_output_patterns"):
        blocked_problem = blocked_patterns_problem(getattr(agent, name))
        if blocked_problem:
            problems[name] = blocked_problem
    return problems


def agent_save(*, agent: Agent, make_default: bool) -> Agent:
    """Save the agent; with `make_default` it becomes the default and the previous
    default stops being one, in one transaction (the one-default constraint holds).
    Raises `InvalidInput` (with the fields) when its model cannot take its settings or
    its PII patterns are invalid."""
    problems = agent_settings_problems(agent)
    if problems:
        raise InvalidInput(" ".join(problems.values()), fields=problems)
    with transaction.atomic():
        if make_default:
            Agent.objects.filter(is_default=True).exclude(pk=agent.pk).update(is_default=False)
        agent.is_default = make_default
        agent.save()
    return agent
