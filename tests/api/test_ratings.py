"""CSAT over REST: `POST /api/v1/conversations/<id>/rating` stores the customer's rating
once per resolution and answers every refusal with the one error shape the schema
documents. Who may call it is in test_authorization.py's matrix."""

from __future__ import annotations

import pytest

from conversations.models import CsatRating
from conversations.services.conversations import conversation_create, conversation_set_status
from tests.api.conftest import visitor_caller
from tests.api.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db


def _post(caller, conversation, body):
    path = f"/api/v1/conversations/{conversation.pk}/rating"
    response = caller.call("POST", path, body)
    assert_matches_schema(response, "POST", path)
    return response


def test_a_visitor_rates_once_per_resolution_and_every_refusal_says_why(default_agent):
    conversation = conversation_create(channel="widget")
    visitor = visitor_caller(conversation)
    # Open: not yet
    refused = _post(visitor, conversation, {"score": 4})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "not_resolved")
    conversation_set_status(conversation=conversation, status="resolved")
    # Bad input: a score outside 1-5, a string score, a comment over the limit
    for body in ({"score": 0}, {"score": 6}, {"score": "4"}, {"score": 4.5}, {"score": True},
                 {"score": 4, "comment": "x" * 1001}, {}):
        response = _post(visitor, conversation, body)
        assert response.status_code == 400, body
        assert set(response.json()["error"]["fields"]) <= {"score", "comment"} and response.json()["error"]["fields"]
    assert not CsatRating.objects.exists()
    # Rated: 201 with what was stored; a second rating of this resolution is a conflict
    stored = _post(visitor, conversation, {"score": 4, "comment": "Quick."})
    assert stored.status_code == 201
    assert {k: stored.json()[k] for k in ("conversation", "resolution", "score", "comment")} == {
        "conversation": str(conversation.pk), "resolution": 1, "score": 4, "comment": "Quick.",
    }
    again = _post(visitor, conversation, {"score": 1})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_rated")
    assert list(CsatRating.objects.values_list("score", flat=True)) == [4]
