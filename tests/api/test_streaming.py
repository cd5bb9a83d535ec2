"""Answers over real HTTP against daphne: Server-Sent Events and `?wait`.

The fake provider streams its words with a delay between deltas, so a turn takes a
while and the test can observe events arriving while the turn row is still running.
"""

from __future__ import annotations

import pytest

from conversations.models import Message, Turn
from tests import fake_provider as fp
from tests.api.schema_check import assert_matches_schema
from tests.api.sse import events as sse_events
from tests.conftest import wait_turn_finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STREAM = {"Accept": "text/event-stream"}
ANSWER = "Your order 1001 has shipped and should arrive on Thursday, tracked by UPS."


@pytest.fixture
def http(provider_server, live_key, _fake_provider_server):
    _fake_provider_server.reset()
    with provider_server.client(headers={"Authorization": f"Bearer {live_key}"}) as client:
        client.server = provider_server
        yield client


@pytest.fixture
def conversation(http):
    response = http.post("/api/v1/conversations", json={"customer_id": "u-stream"})
    assert response.status_code == 201, response.text
    return response.json()


def test_events_stream_while_the_turn_runs_and_end_with_the_stored_answer(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.text(ANSWER, delta_delay=0.12))
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    received = []
    status_at_first_delta = None
    with http.stream("POST", path, json={"text": "Where is order 1001?"}, headers=STREAM) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response.iter_lines()):
            received.append(event)
            if event["type"] == "text.delta" and status_at_first_delta is None:
                status_at_first_delta = Turn.objects.get(pk=event["turn"]).status
    types = [e["type"] for e in received]
    # Then the first delta arrived while the turn was still running ...
    assert status_at_first_delta == "running", server_log(http)
    # ... the stream carried the websocket's events, in order ...
    assert types[0] == "message" and received[0]["message"]["kind"] == "user"
    assert types.index("turn.queued") < types.index("turn.started") < types.index("text.delta")
    assert "".join(e["delta"] for e in received if e["type"] == "text.delta") == ANSWER
    # ... and it ended with the stored assistant message, then turn.completed.
    assert types[-2:] == ["message", "turn.completed"]
    stored = Message.objects.get(conversation_id=conversation["id"], kind="assistant")
    assert received[-2]["message"] == {**received[-2]["message"], "seq": stored.seq, "text": ANSWER}
    assert received[-1]["message_seq"] == stored.seq


def test_a_client_that_disconnects_mid_stream_loses_nothing(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.text(ANSWER, delta_delay=0.1))
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    with http.stream("POST", path, json={"text": "Where is order 1001?"}, headers=STREAM) as response:
        for event in sse_events(response.iter_lines()):
            if event["type"] == "text.delta":
                turn_id = event["turn"]
                break
    # The connection is closed mid-answer; the turn, running on the engine, carries on.
    assert Turn.objects.get(pk=turn_id).status == "running"
    turn = wait_turn_finished(turn_id)
    assert turn.status == "completed", turn.error_message
    listed = http.get(path).json()["results"]
    assert [m["kind"] for m in listed] == ["user", "assistant"]
    assert listed[-1]["text"] == ANSWER


def test_a_failed_turn_ends_the_stream_and_a_streamed_retry_answers(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.status(500, "upstream exploded"))
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    with http.stream("POST", path, json={"text": "Hello?"}, headers=STREAM) as response:
        failed = list(sse_events(response.iter_lines()))
    assert failed[-1]["type"] == "turn.failed" and failed[-1]["retryable"] is True
    assert not Message.objects.filter(conversation_id=conversation["id"], kind="assistant").exists()

    _fake_provider_server.queue(fp.text("Sorry about that. Hello!", delta_delay=0.02))
    retry_path = f"/api/v1/conversations/{conversation['id']}/turns/{failed[-1]['turn']}/retry"
    with http.stream("POST", retry_path, headers=STREAM) as response:
        assert response.status_code == 200
        retried = list(sse_events(response.iter_lines()))
    assert retried[-1]["type"] == "turn.completed"
    assert retried[-2]["message"]["text"] == "Sorry about that. Hello!"
    attempts = Turn.objects.filter(conversation_id=conversation["id"]).order_by("attempt")
    assert [(t.attempt, t.status) for t in attempts] == [(1, "failed"), (2, "completed")]


def test_wait_answers_with_the_finished_turn_and_its_answer(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.text(ANSWER, delta_delay=0.01))
    path = f"/api/v1/conversations/{conversation['id']}/messages?wait=20"
    response = http.post(path, json={"text": "Where is order 1001?"})
    assert response.status_code == 201
    assert_matches_schema(response, "POST", path)
    body = response.json()
    assert body["turn"]["status"] == "completed"
    assert [m["text"] for m in body["answer"]] == [ANSWER]
    assert body["turn"]["audit"]["usage"]["output_tokens"] > 0


def test_wait_gives_up_after_the_bound_and_reports_the_running_turn(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.text(ANSWER, delay=3.0))
    path = f"/api/v1/conversations/{conversation['id']}/messages?wait=1"
    response = http.post(path, json={"text": "Slow one"})
    assert response.status_code == 201
    assert response.json()["turn"]["status"] in ("queued", "running")
    assert response.json()["answer"] == []
    assert wait_turn_finished(response.json()["turn"]["id"]).status == "completed"


def test_streaming_a_repeated_post_replays_the_finished_answer(http, conversation, _fake_provider_server):
    _fake_provider_server.queue(fp.text(ANSWER))
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    first = http.post(f"{path}?wait=20", json={"text": "Where?", "client_id": "once"}).json()
    assert first["turn"]["status"] == "completed"
    response = http.post(path, json={"text": "Where?", "client_id": "once"}, headers=STREAM)
    assert_matches_schema(response, "POST", path)
    replay = list(sse_events(response.iter_lines()))
    assert [e["type"] for e in replay] == ["message", "message", "turn.completed"]
    assert replay[1]["message"]["text"] == ANSWER
    assert len(_fake_provider_server.requests) == 1


def test_streaming_while_a_person_has_taken_over_carries_the_message_only(http, conversation):
    http.post(f"/api/v1/conversations/{conversation['id']}/handoff", json={"reason": "VIP"})
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    response = http.post(path, json={"text": "Anyone there?"}, headers=STREAM)
    received = list(sse_events(response.iter_lines()))
    assert [e["type"] for e in received] == ["message"]


def server_log(http) -> str:
    return http.server.log_tail()
