"""The provider misbehaves while a daphne process runs the turn: the SDK retries a
bounded number of times (counted at the fake provider), then the turn fails cleanly
with its event; nothing is stored as an answer, the user message is intact, and a
retry answers it."""

from __future__ import annotations

import pytest

from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from conversations.services.turns import turn_retry
from tests import fake_provider as fp
from tests.conftest import wait_for, wait_turn_finished
from tests.scale.harness import PROVIDER_MAX_RETRIES, PROVIDER_TIMEOUT_SECONDS

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ATTEMPTS = 1 + PROVIDER_MAX_RETRIES
FAST_RETRY = {"retry-after-ms": "20"}


def rate_limited() -> fp.Step:
    return fp.status(429, "Slow down", headers=FAST_RETRY, error_code="rate_limit_exceeded")


def server_error() -> fp.Step:
    return fp.status(500, "Internal error", headers=FAST_RETRY)


def hanging() -> fp.Step:
    return fp.hang(PROVIDER_TIMEOUT_SECONDS + 3)


CASES = {
    # fault: (steps the provider plays, requests expected, the turn's error code)
    "429": ([rate_limited() for _ in range(ATTEMPTS)], ATTEMPTS, "rate_limited"),
    "500": ([server_error() for _ in range(ATTEMPTS)], ATTEMPTS, "provider_error"),
    "hang": ([hanging() for _ in range(ATTEMPTS)], ATTEMPTS, "timeout"),
    # A stream that broke half way is not retried by the SDK: one request.
    "cut": ([fp.cut("Your order has shipped and will arrive", after_words=3)], 1, "stream_interrupted"),
}


@pytest.mark.parametrize("fault", list(CASES))
def test_provider_fault_ends_in_a_clean_failed_turn_then_retry_answers(scale, fault):
    steps, expected_requests, error_code = CASES[fault]
    # Given a provider that fails every attempt of the first turn, then recovers
    scale.provider.queue(*steps, fp.text("Recovered answer."))
    conversation = conversation_create(channel="api")
    scale.recorder.subscribe(conversation.id)
    # When a customer message is answered by one of the daphne processes
    posted = message_post(conversation=conversation, text="Where is order 1001?")
    turn = wait_turn_finished(posted.turn.id, timeout=30)
    # Then the SDK tried a bounded number of times and the turn failed cleanly
    assert turn.status == "failed" and turn.error_code == error_code, turn.error_message
    assert len(scale.provider.requests) == expected_requests
    failed_events = wait_for(lambda: scale.recorder.of("turn.failed", turn.id))
    assert failed_events[0]["error_code"] == error_code and failed_events[0]["retryable"]
    assert not scale.recorder.of("turn.completed", turn.id)
    stored = list(Message.objects.filter(conversation=conversation).values_list("seq", "kind", "text"))
    assert stored == [(1, "user", "Where is order 1001?")]
    if fault == "cut":  # what streamed before the cut is audit only, never an answer
        assert turn.partial_text == "Your order has "
    # and a retry answers the same message once
    done = wait_turn_finished(turn_retry(turn=turn).id, timeout=30)
    assert done.status == "completed"
    assert len(scale.provider.requests) == expected_requests + 1
    stored = list(Message.objects.filter(conversation=conversation).values_list("seq", "kind", "text"))
    assert stored == [(1, "user", "Where is order 1001?"), (2, "assistant", "Recovered answer.")]
    assert list(Turn.objects.filter(conversation=conversation).order_by("attempt").values_list("status", flat=True)) == [
        "failed", "completed",
    ]
