"""The failure audit keeps the facts (issue 15, finding 4): the response id of a cut
stream, every HTTP attempt with its status (the SDK's retries included), and the
stream phase a cut happened in."""

from __future__ import annotations

import pytest

from tests.engine.support import answered, ask
from tests.fake_provider import calls, cut, cut_during, hang, status, text

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def retries(settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "PROVIDER_MAX_RETRIES": 2}


def test_a_cut_stream_keeps_the_response_id_that_response_created_carried(conversation, provider):
    provider.queue(cut("This answer will be cut off half way", after_words=3))

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "failed" and turn.error_code == "stream_interrupted"
    created = next(e for e in provider.events_sent if e["type"] == "response.created")
    assert turn.response_ids == [created["response"]["id"]]
    assert turn.rounds[0]["response_id"] == created["response"]["id"]
    assert turn.rounds[0]["stream_phase"] == "text"


def test_every_attempt_is_recorded_with_its_status(conversation, provider, retries):
    provider.queue(status(500, "boom"), status(500, "boom"), text("Finally."))

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "completed", turn.error_message
    (round_,) = turn.rounds
    assert round_["attempt_count"] == 3
    assert [a["status"] for a in round_["attempts"]] == [500, 500, 200]
    assert [a["retry_count"] for a in round_["attempts"]] == [0, 1, 2]
    assert round_["response_id"] == turn.response_ids[0]


def test_attempts_of_a_failed_round_are_kept(conversation, provider, retries):
    provider.queue(status(503, "down"), status(503, "down"), status(503, "down"))

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "failed" and turn.error_code == "provider_error"
    assert [a["status"] for a in turn.rounds[0]["attempts"]] == [503, 503, 503]
    assert turn.rounds[0]["stream_phase"] == "before_first_event"


@pytest.mark.parametrize("where", ["reasoning", "tool_arguments"])
def test_a_stream_cut_before_any_text_is_an_interrupted_stream(conversation, provider, agent, where):
    agent.model = "gpt-5-mini"
    agent.save(update_fields=["model"])
    provider.queue(cut_during(where))

    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))

    assert turn.status == "failed"
    assert turn.error_code == "stream_interrupted", turn.error_message
    assert turn.rounds[0]["stream_phase"] == where
    assert turn.rounds[0]["response_id"].startswith("resp_")


def test_cached_tokens_are_kept_per_round(conversation, provider):
    provider.queue(
        calls(("lookup_order", {"order_number": "1001", "email": "ada@example.com"}), usage=(900, 20, 0, 0)),
        text("Done.", usage=(1000, 5, 896, 0)),
    )
    turn = answered(ask(conversation, "Where is 1001? ada@example.com"))
    assert turn.status == "completed"
    assert [(r["input_tokens"], r["cached_tokens"]) for r in turn.rounds] == [(900, 0), (1000, 896)]
    assert turn.cached_tokens == 896


def test_the_turn_audit_page_shows_every_attempt_and_cached_tokens(conversation, provider, retries, admin_client):
    provider.queue(status(500, "boom"), text("Finally.", usage=(1500, 5, 1280, 0)))
    turn = answered(ask(conversation, "Hello"))

    page = admin_client.get(f"/admin/conversations/turn/{turn.pk}/change/").content.decode()

    rounds = page.split('id="cs-rounds"', 1)[1].split("</table>", 1)[0]
    assert "500" in rounds and "200" in rounds and turn.response_ids[0] in rounds
    assert '<td class="cs-cached">1280</td>' in rounds


def test_an_attempt_that_got_no_answer_is_recorded_before_the_retry(conversation, provider, settings, gates):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "PROVIDER_TIMEOUT_SECONDS": 0.5}
    provider.queue(hang(5, gate=gates()), text("Second time lucky."))

    turn = answered(ask(conversation, "Hello"))

    assert turn.status == "completed", turn.error_message
    first, second = turn.rounds[0]["attempts"]
    assert first["status"] is None and "no response" in first["error"]
    assert second["status"] == 200 and turn.rounds[0]["attempt_count"] == 2
