"""One answer to "the database cannot be reached", whichever door is asked: 503 with
`Retry-After` and the API's error shape `{"error": {"code": "service_unavailable",
"message", "fields"}}` on every `/api/` endpoint, the widget's session endpoint (with
its CORS headers, so the embedding page can read it) and the console's try-it panel.

Runs in either mode, in process; tests/scale/test_api_outage.py asks daphne processes
the same while their PostgreSQL connection is cut.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from conversations.access import visitor_token_issue
from conversations.api.models import Scope
from conversations.models import Message
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from tests.api.conftest import key_caller
from tests.resilience.test_database_unavailable import database_unreachable

pytestmark = pytest.mark.django_db(transaction=True)

UNAVAILABLE = "service_unavailable"


def api_requests(conversation: Any, turn: Any) -> list[tuple[str, str, dict[str, Any] | None, dict[str, str]]]:
    """(method, path, JSON body, extra headers) for every API endpoint that needs the database."""
    c = f"/api/v1/conversations/{conversation.pk}"
    t = f"{c}/turns/{turn.pk}"
    return [
        ("GET", "/api/v1/conversations", None, {}),
        ("POST", "/api/v1/conversations", {"customer_email": "ada@example.com"}, {}),
        ("GET", c, None, {}),
        ("PATCH", c, {"status": "resolved"}, {}),
        ("POST", f"{c}/handoff", {"reason": "help"}, {}),
        ("POST", f"{c}/handback", None, {}),
        ("GET", f"{c}/messages", None, {}),
        ("POST", f"{c}/messages", {"text": "Hello?"}, {}),
        ("POST", f"{c}/messages?wait=5", {"text": "Hello?"}, {}),
        ("POST", f"{c}/messages", {"text": "Hello?"}, {"Accept": "text/event-stream"}),
        ("GET", f"{c}/turns", None, {}),
        ("GET", t, None, {}),
        ("POST", f"{t}/retry", None, {}),
        ("POST", f"{t}/retry?wait=5", None, {}),
        ("POST", f"{t}/cancel", None, {}),
    ]


def assert_unavailable(response: Any, what: str) -> None:
    assert response.status_code == 503, (what, response.status_code, response.content[:300])
    assert int(response["Retry-After"]) > 0, what
    assert response["Content-Type"].startswith("application/json"), what
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == UNAVAILABLE, (what, body)
    assert body["error"]["message"] and body["error"]["fields"] == {}, (what, body)


@pytest.fixture
def conversation_and_turn(default_agent: Any, settings: Any) -> tuple[Any, Any]:
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "SWEEP_INTERVAL_SECONDS": 0}
    conversation = conversation_create(channel="api")
    conversation.ai_paused = True  # store without running a turn
    conversation.save(update_fields=["ai_paused"])
    posted = message_post(conversation=conversation, text="Where is my order?")
    from conversations.models import Turn

    turn = Turn.objects.create(conversation=conversation, user_message=posted.message, agent=default_agent,
                               status="failed")
    return conversation, turn


@pytest.mark.parametrize("caller", ["key", "visitor"])
def test_every_api_endpoint_answers_503_in_the_error_shape_while_the_database_is_away(
    conversation_and_turn, caller
):
    conversation, turn = conversation_and_turn
    if caller == "key":
        headers = key_caller(scopes=[Scope.READ, Scope.WRITE, Scope.ALL_CONVERSATIONS]).headers
    else:
        headers = {"HTTP_AUTHORIZATION": f"Visitor {visitor_token_issue(conversation)}"}
    client = Client(raise_request_exception=False)
    requests = api_requests(conversation, turn)
    with database_unreachable():
        responses = [
            (f"{method} {path} {extra}", client.generic(
                method, path, data=json.dumps(body) if body is not None else "",
                content_type="application/json",
                **headers, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in extra.items()},
            ))
            for method, path, body, extra in requests
        ]
    for what, response in responses:
        assert_unavailable(response, what)
    # and nothing was half written; the API answers again by itself
    assert Message.objects.filter(conversation=conversation).count() == 1
    listed = client.get(f"/api/v1/conversations/{conversation.pk}/messages", **headers)
    assert listed.status_code == 200 and len(listed.json()["results"]) == 1


def test_the_widget_session_answers_503_in_the_same_shape_with_its_cors_headers(default_agent, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_ORIGINS": ["https://shop.example"]}
    client = Client(raise_request_exception=False)
    with database_unreachable():
        started = client.post("/widget/session", "{}", content_type="application/json",
                              headers={"Origin": "https://shop.example"})
    assert_unavailable(started, "widget session")
    assert started["Access-Control-Allow-Origin"] == "https://shop.example"


def test_the_console_try_it_panel_answers_503_in_the_same_shape(default_agent, admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    started = client.post(f"/admin/conversations/agent/{default_agent.pk}/try/")
    assert started.status_code == 201
    chat = started.json()["conversation"]
    with database_unreachable():
        posted = client.post(f"/admin/conversations/agent/{default_agent.pk}/try/{chat}/messages/",
                             '{"text": "Hi"}', content_type="application/json")
    assert_unavailable(posted, "try-it message")


def test_the_outage_middleware_answers_json_in_the_same_shape(admin_user):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    with database_unreachable():
        page = client.get("/admin/conversations/conversation/", headers={"accept": "application/json"})
    assert_unavailable(page, "admin page asked for JSON")
