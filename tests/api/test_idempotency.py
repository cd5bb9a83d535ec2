"""Posting the same message twice (client_id or Idempotency-Key) makes one message, one turn."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from conversations.models import Message, Turn
from tests.api.schema_check import assert_matches_schema
from tests.conftest import wait_turn_finished


@pytest.fixture
def path(api_key):
    conversation = api_key.call("POST", "/api/v1/conversations", {"customer_id": "u1"}).json()
    return f"/api/v1/conversations/{conversation['id']}/messages"


def _counts(path):
    conversation_id = path.split("/")[4]
    return (
        Message.objects.filter(conversation_id=conversation_id).count(),
        Turn.objects.filter(conversation_id=conversation_id).count(),
    )


@pytest.mark.django_db
def test_the_same_client_id_twice_returns_the_first_message_and_turn(api_key, path):
    first = api_key.call("POST", path, {"text": "Where is my order?", "client_id": "m-1"})
    again = api_key.call("POST", path, {"text": "Where is my order?", "client_id": "m-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert_matches_schema(again, "POST", path)
    assert again.json()["created"] is False
    assert again.json()["message"] == first.json()["message"]
    assert again.json()["turn"]["id"] == first.json()["turn"]["id"]
    assert _counts(path) == (1, 1)


@pytest.mark.django_db
def test_the_idempotency_key_header_works_like_client_id(api_key, path):
    first = api_key.call("POST", path, {"text": "Hello"}, HTTP_IDEMPOTENCY_KEY="k-9")
    again = api_key.call("POST", path, {"text": "Hello"}, HTTP_IDEMPOTENCY_KEY="k-9")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["message"]["client_id"] == "k-9"
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    assert _counts(path) == (1, 1)
    # A body client_id equal to the header is the same request; a different one is an error.
    assert api_key.call("POST", path, {"text": "Hello", "client_id": "k-9"}, HTTP_IDEMPOTENCY_KEY="k-9").status_code == 200
    response = api_key.call("POST", path, {"text": "Hello", "client_id": "other"}, HTTP_IDEMPOTENCY_KEY="k-9")
    assert response.status_code == 400 and "client_id" in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_without_a_key_each_post_is_a_new_message(api_key, path):
    api_key.call("POST", path, {"text": "Hello"})
    api_key.call("POST", path, {"text": "Hello"})
    assert _counts(path) == (2, 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_make_one_message_and_one_turn(api_key, path, offline):
    results: list[int] = []
    barrier = threading.Barrier(4)

    def post() -> None:
        barrier.wait()
        try:
            response = api_key.call("POST", path, {"text": "Same", "client_id": "race"})
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 200, 200, 201]
    assert _counts(path)[1] == 1
    wait_turn_finished(Turn.objects.get(conversation_id=path.split("/")[4]).pk)
    assert Message.objects.filter(conversation_id=path.split("/")[4], kind="user").count() == 1
