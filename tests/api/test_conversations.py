"""Driving conversations through the API: create, list, filter, page, status, handoff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.models import Agent, Conversation, Turn
from conversations.models.turn import TurnStatus
from tests.api.conftest import Caller
from tests.api.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db
BASE = "/api/v1/conversations"


def test_a_key_creates_a_conversation_for_a_customer_with_agent_and_metadata(api_key, default_agent):
    other = Agent.objects.create(name="Sales", instructions="Sell.")
    response = api_key.call("POST", BASE, {
        "agent": other.pk, "customer_id": "crm-42", "customer_email": "ada@example.com",
        "customer_name": "Ada", "metadata": {"plan": "pro", "tags": ["vip"]},
    })
    assert response.status_code == 201
    assert_matches_schema(response, "POST", BASE)
    body = response.json()
    assert (body["agent"], body["customer_kind"], body["customer_id"], body["channel"]) == (other.pk, "user", "crm-42", "api")
    assert body["metadata"] == {"plan": "pro", "tags": ["vip"]} and body["last_seq"] == 0
    # The visitor token it carries opens exactly this conversation.
    visitor = APIClient()
    token = f"Visitor {body['visitor_token']}"
    assert visitor.get(f"{BASE}/{body['id']}", HTTP_AUTHORIZATION=token).status_code == 200


def test_anonymous_creation_makes_a_widget_visitor_conversation(default_agent):
    client = APIClient()
    response = client.post(BASE, {"customer_name": "Grace", "metadata": {"page": "/help"}}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["channel"], body["customer_kind"], body["agent"]) == ("widget", "visitor", default_agent.pk)
    assert body["customer_id"].startswith("visitor-") and body["usage"] is None
    refused = client.post(BASE, {"customer_id": "admin"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["fields"] == {"customer_id": "not allowed"}


def test_unknown_agents_are_a_field_error(api_key):
    response = api_key.call("POST", BASE, {"agent": 999999})
    assert response.status_code == 400 and response.json()["error"]["fields"] == {"agent": "unknown agent"}


def test_listing_filters_by_status_agent_customer_channel_and_update_time(api_key, default_agent):
    sales = Agent.objects.create(name="Sales")
    ids = {
        name: api_key.call("POST", BASE, {"customer_id": name, **extra}).json()["id"]
        for name, extra in [("ann", {}), ("bob", {"agent": sales.pk}), ("cy", {})]
    }
    api_key.call("PATCH", f"{BASE}/{ids['cy']}", {"status": "resolved"})
    Conversation.objects.filter(pk=ids["ann"]).update(updated_at=timezone.now() - timedelta(days=3))

    def listed(query: str) -> set[str]:
        response = api_key.call("GET", f"{BASE}?{query}")
        assert response.status_code == 200, response.content
        assert_matches_schema(response, "GET", BASE)
        return {c["customer_id"] for c in response.json()["results"]}

    assert listed("status=resolved") == {"cy"}
    assert listed(f"agent={sales.pk}") == {"bob"}
    assert listed("customer=ann") == {"ann"}
    assert listed("channel=widget") == set()
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert listed(f"updated_since={since}") == {"bob", "cy"}


def test_cursor_pages_walk_every_conversation_once_newest_first(api_key):
    created = [api_key.call("POST", BASE, {"customer_id": f"c{n}"}).json()["id"] for n in range(7)]
    seen, url = [], f"{BASE}?limit=3"
    while url:
        page = api_key.call("GET", url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert seen == list(reversed(created))


def test_resolve_and_reopen(api_key):
    conversation = api_key.call("POST", BASE, {"customer_id": "x"}).json()
    path = f"{BASE}/{conversation['id']}"
    assert api_key.call("PATCH", path, {"status": "resolved"}).json()["status"] == "resolved"
    assert api_key.call("PATCH", path, {"status": "open"}).json()["status"] == "open"
    bad = api_key.call("PATCH", path, {"status": "waiting_on_staff"})
    assert bad.status_code == 400 and "status" in bad.json()["error"]["fields"]


def test_handoff_pauses_the_ai_and_cancels_queued_turns_then_handback_answers(api_key):
    conversation = api_key.call("POST", BASE, {"customer_id": "x"}).json()
    path = f"{BASE}/{conversation['id']}"
    turn = api_key.call("POST", f"{path}/messages", {"text": "I want a person"}).json()["turn"]
    handed = api_key.call("POST", f"{path}/handoff", {"reason": "asked"})
    assert_matches_schema(handed, "POST", f"{path}/handoff")
    assert (handed.json()["status"], handed.json()["ai_paused"]) == ("waiting_on_staff", True)
    assert Turn.objects.get(pk=turn["id"]).status == TurnStatus.CANCELLED
    # While paused, a message is stored but queues no turn.
    paused = api_key.call("POST", f"{path}/messages", {"text": "hello?"}).json()
    assert paused["turn"] is None
    back = api_key.call("POST", f"{path}/handback")
    assert (back.json()["status"], back.json()["ai_paused"]) == ("open", False)
    queued = Turn.objects.filter(conversation_id=conversation["id"], status=TurnStatus.QUEUED).get()
    assert queued.user_message.text == "hello?" and queued.trigger == "handback"


def test_messages_page_in_seq_order_with_after_and_limit(api_key):
    conversation = api_key.call("POST", BASE, {"customer_id": "x"}).json()
    path = f"{BASE}/{conversation['id']}/messages"
    for n in range(5):
        api_key.call("POST", path, {"text": f"message {n}"})
    first = api_key.call("GET", f"{path}?limit=2").json()
    assert [m["seq"] for m in first["results"]] == [1, 2] and first["has_more"] and first["last_seq"] == 2
    rest = api_key.call("GET", f"{path}?after={first['last_seq']}").json()
    assert [m["text"] for m in rest["results"]] == ["message 2", "message 3", "message 4"]
    assert rest["has_more"] is False
    empty = api_key.call("GET", f"{path}?after=5").json()
    assert empty == {"results": [], "has_more": False, "last_seq": None}


def test_turns_list_summaries_and_retrieve_with_audit_for_staff(api_key, world):
    staff: Caller = world["callers"]["staff"]
    conversation = api_key.call("POST", BASE, {"customer_id": "x"}).json()
    path = f"{BASE}/{conversation['id']}"
    posted = api_key.call("POST", f"{path}/messages", {"text": "hi"}).json()
    Turn.objects.filter(pk=posted["turn"]["id"]).update(
        status=TurnStatus.FAILED, error_code="timeout", error_message="Provider timed out.",
        requests=[{"model": "m", "input": []}], history=[{"seq": 1, "reason": "current", "score": None}],
        redactions={"enabled": True, "kinds": {"EMAIL": {"values": 1, "replacements": 2}}},
    )
    retried = api_key.call("POST", f"{path}/turns/{posted['turn']['id']}/retry")
    assert retried.status_code == 201
    assert_matches_schema(retried, "POST", f"{path}/turns/{posted['turn']['id']}/retry")
    new_turn = retried.json()["turn"]
    assert (new_turn["attempt"], new_turn["retry_of"], new_turn["trigger"]) == (2, posted["turn"]["id"], "api_retry")
    listed = api_key.call("GET", f"{path}/turns").json()["results"]
    assert [(t["attempt"], t["status"]) for t in listed] == [(1, "failed"), (2, "queued")]
    assert all(t["audit"] is None for t in listed)
    retrieved = staff.call("GET", f"{path}/turns/{posted['turn']['id']}")
    assert_matches_schema(retrieved, "GET", f"{path}/turns/{posted['turn']['id']}")
    audit = retrieved.json()["audit"]
    assert audit["requests"] == [{"model": "m", "input": []}] and audit["history"][0]["reason"] == "current"
    assert audit["redactions"] == {"enabled": True, "kinds": {"EMAIL": {"values": 1, "replacements": 2}}}
    assert staff.call("GET", f"{path}/turns/{new_turn['id']}").json()["audit"]["redactions"] is None
    cancelled = api_key.call("POST", f"{path}/turns/{new_turn['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
