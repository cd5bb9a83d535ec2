"""`POST /widget/session` (start or resume, cross-origin, no cookies) and the pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from conversations.access import conversation_for_visitor, visitor_token_issue
from conversations.models import Conversation
from conversations.services.conversations import conversation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser_client() -> Client:
    """A client that enforces CSRF like a browser-facing deployment does."""
    return Client(enforce_csrf_checks=True)


def post(client: Client, body: Any, **headers: str):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/widget/session", raw, content_type="application/json", headers=headers)


def test_a_new_visitor_gets_a_widget_conversation_and_a_token_without_cookies_or_csrf(browser_client, default_agent):
    response = post(browser_client, {"page": "https://shop.example/pricing"})
    assert response.status_code == 201
    data = response.json()
    conversation = Conversation.objects.get(pk=data["conversation"])
    assert conversation.channel == "widget" and conversation.metadata == {"page": "https://shop.example/pricing"}
    assert conversation_for_visitor(data["token"], data["conversation"]) == conversation
    assert data["websocket_path"] == f"/ws/conversations/{conversation.pk}/"
    assert data["agent"] == {"name": default_agent.name, "avatar_url": ""}
    assert data["model"]["offline"] is True and "Offline demo model" in data["model"]["label"]
    assert data["limits"]["max_message_chars"] == 8000
    assert not response.cookies and response["Cache-Control"] == "no-store"


def test_a_token_resumes_its_own_conversation(browser_client, default_agent):
    conversation = conversation_create(channel="widget")
    response = post(browser_client, {"token": visitor_token_issue(conversation)})
    assert response.status_code == 200
    assert response.json()["conversation"] == str(conversation.pk)
    assert Conversation.objects.count() == 1


@pytest.mark.parametrize("token", ["forged", "x" * 600, 42])
def test_a_bad_token_is_not_found_and_creates_nothing(browser_client, default_agent, token):
    response = post(browser_client, {"token": token})
    assert response.status_code in (400, 404)
    assert response.json()["error"]["code"] in ("not_found", "invalid")
    assert Conversation.objects.count() == 0


def test_other_sites_are_refused_and_allowed_ones_get_cors_headers(browser_client, default_agent, settings):
    refused = post(browser_client, {}, Origin="https://evil.example")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused
    assert Conversation.objects.count() == 0

    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_ORIGINS": ["shop.example"]}
    preflight = browser_client.options("/widget/session", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Credentials" not in preflight  # no cookies, ever
    allowed = post(browser_client, {}, Origin="https://shop.example")
    assert allowed.status_code == 201 and allowed["Access-Control-Allow-Origin"] == "https://shop.example"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [("{nope", 400, "invalid"), ("[1]", 400, "invalid"), (json.dumps({"page": "x" * 5000}), 413, "too_large")],
)
def test_malformed_or_oversize_bodies_get_clear_errors(browser_client, default_agent, body, status, code):
    response = post(browser_client, body)
    assert response.status_code == status and response.json()["error"]["code"] == code
    assert Conversation.objects.count() == 0


def test_only_post_starts_a_session(browser_client, default_agent):
    response = browser_client.get("/widget/session")
    assert response.status_code == 405 and response["Allow"] == "POST, OPTIONS"


def test_the_demo_page_embeds_the_widget_with_one_script_tag(browser_client):
    html = browser_client.get("/").content.decode()
    assert html.count("<script") == 1
    assert '<script src="http://testserver/static/widget/widget.js" async></script>' in html


def test_the_embed_guide_documents_the_snippet_and_options(browser_client):
    html = browser_client.get("/widget/docs/").content.decode()
    assert "http://testserver/static/widget/widget.js" in html
    for option in ("data-accent", "position", "strings", "--support-chat-accent", "SUPPORT_WIDGET_ORIGINS"):
        assert option in html


def test_new_conversations_are_rate_limited_per_address_but_resuming_is_not(browser_client, default_agent, settings):
    # Given a limit of two new conversations per address
    from django.core.cache import cache

    cache.clear()
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_SESSION_RATE": "2/hour"}
    first = post(browser_client, {})
    assert post(browser_client, {}).status_code == 201
    # When a third is asked for, then it is refused with a wait and nothing is created
    count = Conversation.objects.count()
    refused = post(browser_client, {})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "throttled"
    assert Conversation.objects.count() == count
    # And the visitor can still resume the conversation they have
    assert post(browser_client, {"token": first.json()["token"]}).status_code == 200
