"""Provider failures through the real SDK: each fails the turn with a clear code, stores
no half answer, keeps what was streamed in the audit only, and a retry succeeds. The
SDK's own retries are configured and bounded, not re-implemented."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Turn
from conversations.services.turns import turn_retry
from tests.engine.support import answered, ask, finished, items_of, kinds
from tests.fake_provider import cut, error_event, failed, hang, incomplete, status, text

pytestmark = pytest.mark.django_db(transaction=True)

FAST_RETRY = {"retry-after-ms": "10"}  # honoured by the SDK: keeps its retries quick


def _sdk(settings: Any, **options: Any) -> None:
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, **options}


def _retry_succeeds(conversation: Any, provider: Any, turn: Turn) -> Turn:
    provider.queue(text("Here is the full answer."))
    again = turn_retry(turn=turn)
    done = finished(again)
    assert done.status == "completed", done.error_message
    assert done.attempt == turn.attempt + 1 and done.retry_of_id == turn.pk
    assert [m.text for m in items_of(conversation, "assistant")] == ["Here is the full answer."]
    assert Turn.objects.filter(user_message=turn.user_message).count() == 2  # every attempt kept
    conversation.refresh_from_db()
    assert conversation.has_failed_turn is False
    return done


def _failed_without_answer(conversation: Any, turn: Turn, code: str) -> None:
    assert turn.status == "failed", turn.status
    assert turn.error_code == code, (turn.error_code, turn.error_message)
    assert kinds(conversation) == ["user"]
    conversation.refresh_from_db()
    assert conversation.has_failed_turn is True


def test_http_500_is_retried_by_the_sdk_then_fails_the_turn(conversation, provider, settings):
    _sdk(settings, PROVIDER_MAX_RETRIES=1)
    provider.queue(status(500, "boom", headers=FAST_RETRY), status(500, "boom", headers=FAST_RETRY))

    turn = answered(ask(conversation, "Hello"))

    _failed_without_answer(conversation, turn, "provider_error")
    assert "HTTP 500" in turn.error_message
    assert len(provider.requests) == 2  # the first attempt and one SDK retry
    _retry_succeeds(conversation, provider, turn)


def test_http_429_retries_are_bounded(conversation, provider, settings):
    _sdk(settings, PROVIDER_MAX_RETRIES=2)
    provider.queue(*[status(429, "slow down", headers=FAST_RETRY) for _ in range(5)])

    turn = answered(ask(conversation, "Hello"))

    _failed_without_answer(conversation, turn, "rate_limited")
    assert len(provider.requests) == 3  # 1 + PROVIDER_MAX_RETRIES, never more
    assert len(turn.requests) == 1  # one round, as the platform sent it


def test_a_429_followed_by_success_is_invisible_to_the_turn(conversation, provider, settings):
    _sdk(settings, PROVIDER_MAX_RETRIES=2)
    provider.queue(status(429, "slow down", headers=FAST_RETRY), text("Fine."))

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "completed", turn.error_message
    assert len(provider.requests) == 2 and len(turn.requests) == 1


def test_a_hanging_provider_times_out(conversation, provider, settings, gates):
    _sdk(settings, PROVIDER_TIMEOUT_SECONDS=0.5, PROVIDER_MAX_RETRIES=0)
    provider.queue(hang(30, gate=gates()))

    turn = answered(ask(conversation, "Hello"))

    _failed_without_answer(conversation, turn, "timeout")
    _retry_succeeds(conversation, provider, turn)


def test_a_stream_cut_mid_way_fails_and_keeps_the_partial_text_in_the_audit(conversation, provider):
    provider.queue(cut("This answer will be cut off half way", after_words=3))

    turn = answered(ask(conversation, "Tell me everything"))

    _failed_without_answer(conversation, turn, "stream_interrupted")
    assert turn.partial_text == "This answer will "
    _retry_succeeds(conversation, provider, turn)


@pytest.mark.parametrize(
    ("step", "code", "message"),
    [
        (failed("server_error", "The model failed."), "response_failed", "The model failed."),
        (error_event("server_error", "Stream error."), "response_failed", "Stream error."),
        (incomplete("Partial answer"), "incomplete", "cut short (max_output_tokens)"),
    ],
    ids=["response.failed", "error-event", "response.incomplete"],
)
def test_terminal_failure_events_fail_the_turn(conversation, provider, step, code, message):
    provider.queue(step)

    turn = answered(ask(conversation, "Hello"))

    _failed_without_answer(conversation, turn, code)
    assert message in turn.error_message
    if step.kind != "error_event":
        assert turn.input_tokens == 100 and len(turn.response_ids) == 1  # usage of the failed round kept
    if step.kind == "incomplete":
        assert turn.partial_text == "Partial answer"
    _retry_succeeds(conversation, provider, turn)


def _history(conversation: Any, count: int) -> None:
    from django.db import transaction

    from conversations.services.items import items_append

    items = []
    for index in range(count):
        items.append({"kind": "user", "text": f"Earlier question number {index} about parcels and refunds."})
        items.append({"kind": "assistant", "text": f"Earlier answer number {index}: it is on its way to you."})
    with transaction.atomic():
        items_append(conversation=conversation, items=items)


@pytest.mark.parametrize("how", ["http-400", "error-event"])
def test_context_length_exceeded_is_retried_once_with_half_the_budget(conversation, provider, agent, how):
    agent.history_token_budget = 400
    agent.save(update_fields=["history_token_budget"])
    _history(conversation, 20)
    too_long = (
        status(400, "Your input exceeds the context window.", error_code="context_length_exceeded")
        if how == "http-400"
        else error_event("context_length_exceeded", "Your input exceeds the context window of this model.")
    )
    provider.queue(too_long, text("Short answer."))

    turn = answered(ask(conversation, "And now?"))

    assert turn.status == "completed", turn.error_message
    first, second = provider.requests
    assert len(second["input"]) < len(first["input"])
    assert turn.history_budget == 200 and turn.history_tokens <= 200
    assert second["input"][-1] == {"type": "message", "role": "user", "content": "And now?"}
    assert turn.requests == [first, second]


def test_context_length_exceeded_twice_fails_the_turn(conversation, provider):
    error = status(400, "Too long.", error_code="context_length_exceeded")
    provider.queue(error, error, text("never sent"))

    turn = answered(ask(conversation, "Hello"))

    _failed_without_answer(conversation, turn, "context_length")
    assert len(provider.requests) == 2
