"""Prompt caching and the safety identifier (issue 15, finding 3).

The fake provider simulates OpenAI's prompt cache (longest common prefix with the
previous request of the same `prompt_cache_key`), so these tests measure, through the
real engine and SDK, how much of each turn's prompt is cacheable once a conversation
is longer than its history budget."""

from __future__ import annotations

import random

import pytest

from conversations.models import Turn
from conversations.services.conversations import conversation_create
from tests.engine.support import answered, ask
from tests.fake_provider import text

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = ("parcel", "refund", "grinder", "kettle", "courier", "tracking", "invoice", "voucher", "delayed", "box")


def _sentence(rng: random.Random, count: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(count)) + "."


def _chat(conversation, provider, exchanges: int) -> list[Turn]:
    rng = random.Random(3)
    provider.responder = lambda body: text(_sentence(rng, 30))
    return [answered(ask(conversation, _sentence(rng, 25))) for _ in range(exchanges)]


@pytest.fixture
def small_budget(agent):
    agent.history_token_budget = 1500
    agent.instructions = "You help customers of a coffee equipment shop. " * 20
    agent.save(update_fields=["history_token_budget", "instructions"])
    return agent


def _cached_share(turns: list[Turn], skip: int) -> float:
    late = turns[skip:]
    return sum(t.cached_tokens for t in late) / sum(t.input_tokens for t in late)


def test_turns_past_the_budget_keep_a_cacheable_prefix(conversation, provider, small_budget):
    provider.count_prompt_tokens = True

    turns = _chat(conversation, provider, 36)

    assert all(t.status == "completed" for t in turns)
    # Past the budget: the history selection dropped items (the total exceeds it).
    assert turns[-1].history_tokens <= 1500
    assert len(turns[-1].history) < 2 * 36
    share = _cached_share(turns, 16)
    assert share >= 0.7, f"only {share:.0%} of input tokens were cacheable"
    # Cached tokens are shown per turn (the audit) and per round.
    assert turns[-1].rounds[0]["cached_tokens"] == turns[-1].cached_tokens


def test_the_sliding_layout_is_what_missed_the_cache(conversation, provider, small_budget, settings):
    """The same conversation with the history selected afresh each turn (the old layout)."""
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "STABLE_HISTORY_PREFIX": False}
    provider.count_prompt_tokens = True

    turns = _chat(conversation, provider, 36)

    assert _cached_share(turns, 16) < 0.7


def test_cache_key_is_per_agent_and_conversation_and_the_safety_identifier_is_a_keyed_hash(
    agent, provider, settings
):
    first = conversation_create(agent=agent, channel="api", customer_id="cust-42", customer_email="ada@example.com")
    second = conversation_create(agent=agent, channel="api", customer_id="cust-43")
    again = conversation_create(agent=agent, channel="api", customer_id="cust-42")
    for conversation in (first, second, again):
        answered(ask(conversation, "Hello"))
    a, b, c = provider.requests
    assert a["prompt_cache_key"] != b["prompt_cache_key"] != c["prompt_cache_key"]
    assert str(agent.pk) in a["prompt_cache_key"] and str(first.pk) in a["prompt_cache_key"]
    assert a["safety_identifier"] == c["safety_identifier"] != b["safety_identifier"]
    for body in (a, b, c):
        identifier = body["safety_identifier"]
        assert "cust-42" not in identifier and "cust-43" not in identifier and "ada@" not in identifier
        assert identifier.startswith("sid-") and len(identifier) <= 64
        assert "user" not in body
    # Keyed: another secret gives another identifier.
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    answered(ask(first, "Hello again"))
    assert provider.requests[-1]["safety_identifier"] != a["safety_identifier"]
