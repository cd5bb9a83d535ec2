"""Guardrails around a turn, through the real SDK and the fake provider: a customer
message an agent blocks is answered with the guardrail reply and never reaches the
provider; an answer it blocks is replaced before the customer sees it (no streamed delta
carries the blocked text); the deployment's own guardrail plugs in by a setting; each
refusal is in the turn's audit with its label; invalid patterns are refused at save."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from conversations.agent.events import group_name
from conversations.agent.guardrails import DEFAULT_REPLY, HOLDBACK, GuardDecision
from conversations.console.agents import agent_save
from conversations.errors import InvalidInput
from conversations.models import Message, Turn
from conversations.services.messages import message_post
from tests.engine.support import answered, ask, items_of
from tests.fake_provider import Step, text

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "STAFF-4417"


@pytest.fixture
def guarded(agent):
    agent.blocked_input_patterns = [{"label": "GAMBLING", "pattern": r"\bcasino\b"}]
    agent.blocked_output_patterns = [{"label": "STAFF_CODE", "pattern": r"STAFF-\d{4}"}]
    agent.guardrail_reply = "I can only help with your orders here. Want me to connect you with a person?"
    agent.save()
    return agent


def test_a_blocked_message_is_answered_with_the_reply_and_never_reaches_the_provider(guarded, conversation, provider):
    turn = answered(ask(conversation, "Which CASINO do you recommend?"))

    assert turn.status == "completed", turn.error_message
    assert provider.requests == [] and turn.requests == []
    (answer,) = items_of(conversation, "assistant")
    assert answer.text == guarded.guardrail_reply
    assert answer.metadata["guardrail"] == "input"
    assert turn.guardrails == [{"stage": "input", "guard": "blocklist", "action": "refuse", "label": "GAMBLING"}]


def test_a_refused_message_stays_out_of_later_requests(guarded, conversation, provider):
    answered(ask(conversation, "Which casino do you recommend?"))
    provider.queue(text("It ships on Monday."))

    turn = answered(ask(conversation, "Fine. When does order 1001 ship?"))

    (request,) = provider.requests
    sent = str(request["input"])
    assert "casino" not in sent.lower()
    assert "When does order 1001 ship?" in sent
    assert guarded.guardrail_reply in sent  # what the customer was told stays in the history
    assert turn.guardrails == []  # refused in its own turn, not again


def test_messages_and_answers_the_rules_do_not_match_go_through_unchanged(guarded, conversation, provider):
    provider.queue(text("Your order ships on Monday."))

    turn = answered(ask(conversation, "When does my order ship?"))

    assert len(provider.requests) == 1
    assert [m.text for m in items_of(conversation, "assistant")] == ["Your order ships on Monday."]
    assert turn.guardrails == []


async def test_a_blocked_answer_is_replaced_and_no_delta_ever_showed_it(
    bound, guarded, conversation, provider, settings
):
    # Given a model whose answer, streamed word by word, leaks a staff code late in it
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "DELTA_FLUSH_SECONDS": 0}
    opening = "Thanks for waiting. " * 6  # longer than the held-back tail: some of it streams
    provider.queue(text(f"{opening}The discount for staff is {SECRET}, use it at checkout."))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation.pk), channel)

    # When the customer asks
    posted = await sync_to_async(message_post)(conversation=conversation, text="Any discount for me?")
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] not in ("turn.completed", "turn.failed"):
        seen.append((await asyncio.wait_for(layer.receive(channel), timeout=10))["event"])

    # Then the stored answer is the reply, the code never streamed, and the audit says why
    assert seen[-1]["type"] == "turn.completed"
    streamed = "".join(e["delta"] for e in seen if e["type"] == "text.delta")
    assert SECRET not in streamed and "STAFF" not in streamed
    assert streamed.startswith("Thanks for waiting.")  # the part checked clean did stream
    answer = await Message.objects.aget(conversation=conversation, kind="assistant")
    assert answer.text == guarded.guardrail_reply and answer.metadata["guardrail"] == "output"
    turn = await Turn.objects.aget(pk=posted.turn.pk)
    assert turn.guardrails == [{"stage": "output", "guard": "blocklist", "action": "refuse", "label": "STAFF_CODE"}]
    assert SECRET not in turn.partial_text


async def test_an_answer_shorter_than_the_held_back_tail_is_checked_whole_before_any_of_it_streams(
    bound, guarded, conversation, provider, settings
):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "DELTA_FLUSH_SECONDS": 0}
    short = "Your order ships on Monday."
    assert len(short) < HOLDBACK
    provider.queue(Step(kind="text", words=["Your order ", "ships on ", "Monday."]))
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(conversation.pk), channel)

    await sync_to_async(message_post)(conversation=conversation, text="When does it ship?")
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] not in ("turn.completed", "turn.failed"):
        seen.append((await asyncio.wait_for(layer.receive(channel), timeout=10))["event"])

    assert [e["delta"] for e in seen if e["type"] == "text.delta"] == [short]  # one release, at the end


class ForbiddenWordGuard:
    """A deployment's own guardrail, as `SUPPORT_GUARDRAILS` names it."""

    name = "forbidden-word"

    def check_input(self, text: str) -> GuardDecision | None:
        return GuardDecision("input", self.name, "FORBIDDEN") if "forbidden" in text.lower() else None

    def check_output(self, text: str) -> GuardDecision | None:
        return None


def forbidden_word_guard(agent: Any) -> ForbiddenWordGuard:
    return ForbiddenWordGuard()


def test_a_deployments_own_guardrail_plugs_in_by_setting(agent, conversation, provider, settings):
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM, "GUARDRAILS": ["tests.engine.test_guardrails.forbidden_word_guard"],
    }

    turn = answered(ask(conversation, "Tell me the Forbidden recipe"))

    assert provider.requests == []
    assert [m.text for m in items_of(conversation, "assistant")] == [DEFAULT_REPLY]
    assert turn.guardrails == [{"stage": "input", "guard": "forbidden-word", "action": "refuse", "label": "FORBIDDEN"}]


@pytest.mark.parametrize("patterns", [
    {"label": "X", "pattern": "a"},  # not a list
    [{"label": "lower", "pattern": "a"}],
    [{"label": "EMPTY", "pattern": ".*"}],
    [{"label": "BROKEN", "pattern": "(unclosed"}],
    [{"label": "EXTRA", "pattern": "a", "flags": "i"}],
])
def test_invalid_blocked_patterns_are_refused_at_save(agent, patterns):
    agent.blocked_output_patterns = patterns

    with pytest.raises(InvalidInput) as refused:
        agent_save(agent=agent, make_default=True)

    assert "blocked_output_patterns" in refused.value.fields
