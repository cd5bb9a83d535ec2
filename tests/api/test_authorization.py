"""The authorization matrix: every endpoint, every kind of caller.

Conversation A was created by the 'acme' integration's key for customer user-a, and
visitor A holds its token; conversation B is visitor B's. 'other_key' belongs to
another integration; 'readonly_key' is acme's with only the read scope; 'audit_key'
is acme's with the audit scope; staff is a superuser session. A foreign id always
answers 404; an allowed caller lacking a right answers 403; no credentials, 401.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from conversations.models import Conversation, Turn
from conversations.models.turn import TurnStatus
from conversations.permissions import AGENT, VIEWER, support_groups_sync
from conversations.services.conversations import conversation_set_status
from conversations.services.messages import message_post, note_add
from tests.api.conftest import Caller, staff_caller
from tests.api.schema_check import assert_matches_schema

CALLERS = ["anonymous", "visitor_a", "visitor_b", "acme_key", "other_key", "readonly_key", "audit_key", "staff"]


def _row(anonymous: int, visitor_a: int, visitor_b: int, acme: int, other: int, readonly: int) -> dict[str, int]:
    return dict(zip(CALLERS, [anonymous, visitor_a, visitor_b, acme, other, readonly, acme, acme], strict=True))


READ = _row(401, 200, 404, 200, 404, 200)
POST = _row(401, 200, 404, 200, 404, 403)
MANAGE = _row(401, 403, 404, 200, 404, 403)
CREATED = _row(401, 201, 404, 201, 404, 403)

# (name, method, path under the conversation (None = collection), body, expected statuses)
ENDPOINTS: list[tuple[str, str, str | None, Any, dict[str, int]]] = [
    ("list", "GET", None, None, _row(401, 200, 200, 200, 200, 200)),
    ("create", "POST", None, {"metadata": {"page": "/pricing"}}, {**_row(201, 201, 201, 201, 201, 403)}),
    ("retrieve", "GET", "", None, READ),
    ("update_status", "PATCH", "", {"status": "resolved"}, MANAGE),
    ("handoff", "POST", "/handoff", {"reason": "asked for a person"}, POST),
    ("handback", "POST", "/handback", None, MANAGE),
    ("messages_list", "GET", "/messages", None, READ),
    ("messages_create", "POST", "/messages", {"text": "Where is my order?"}, CREATED),
    ("turns_list", "GET", "/turns", None, READ),
    ("turn_retrieve", "GET", "/turns/{turn}", None, READ),
    ("turn_retry", "POST", "/turns/{turn}/retry", None, CREATED),
    ("turn_cancel", "POST", "/turns/{turn}/cancel", None, POST),
    # Only the customer rates: its visitor, or a write key on its behalf; never staff.
    ("rate", "POST", "/rating", {"score": 4, "comment": "Fast."}, {**CREATED, "staff": 403}),
]


def _prepare(world: dict[str, Any], name: str) -> Turn:
    """Conversation A holds a customer message, an internal note, and a turn that is
    failed (for retry) or queued (for everything else)."""
    conversation = world["a"]
    posted = message_post(conversation=conversation, text="First question")
    note_add(conversation=conversation, actor=None, text="internal: VIP customer")
    if name == "turn_retry":
        Turn.objects.filter(pk=posted.turn.pk).update(status=TurnStatus.FAILED, error_code="timeout")
    if name == "rate":
        conversation_set_status(conversation=conversation, status="resolved")
    return posted.turn


@pytest.mark.django_db
@pytest.mark.parametrize("caller_name", CALLERS)
@pytest.mark.parametrize(("name", "method", "suffix", "body", "expected"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
def test_authorization_matrix(world, name, method, suffix, body, expected, caller_name):
    # Given conversation A, its turn, and one caller
    turn = _prepare(world, name)
    caller: Caller = world["callers"][caller_name]
    base = "/api/v1/conversations"
    path = base if suffix is None else f"{base}/{world['a'].pk}{suffix.format(turn=turn.pk)}"
    # When the caller calls the endpoint
    response = caller.call(method, path, body)
    # Then the status is the matrix's, the body has the one shape the schema documents
    assert response.status_code == expected[caller_name], response.content
    assert_matches_schema(response, method, path)
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def _ids(response: Any) -> set[str]:
    return {item["id"] for item in response.json()["results"]}


@pytest.mark.django_db
def test_listing_shows_each_caller_only_what_it_may_see(world):
    callers, a, b = world["callers"], str(world["a"].pk), str(world["b"].pk)
    path = "/api/v1/conversations"
    assert _ids(callers["visitor_a"].call("GET", path)) == {a}
    assert _ids(callers["visitor_b"].call("GET", path)) == {b}
    assert _ids(callers["acme_key"].call("GET", path)) == {a}
    assert _ids(callers["other_key"].call("GET", path)) == set()
    assert _ids(callers["staff"].call("GET", path)) == {a, b}


@pytest.mark.django_db
def test_a_key_with_all_conversations_scope_sees_every_conversation(world):
    from tests.api.conftest import key_caller

    wide = key_caller("globex", ["read", "all_conversations"], name="wide")
    assert _ids(wide.call("GET", "/api/v1/conversations")) == {str(world["a"].pk), str(world["b"].pk)}
    assert wide.call("GET", f"/api/v1/conversations/{world['b'].pk}").status_code == 200


@pytest.mark.django_db
def test_internal_notes_and_audits_only_for_staff_level_callers(world):
    turn = _prepare(world, "turn_retrieve")
    a = world["a"].pk
    for name, internal in [("visitor_a", False), ("acme_key", False), ("audit_key", True), ("staff", True)]:
        caller = world["callers"][name]
        kinds = [m["kind"] for m in caller.call("GET", f"/api/v1/conversations/{a}/messages").json()["results"]]
        assert ("note" in kinds) is internal, name
        detail = caller.call("GET", f"/api/v1/conversations/{a}/turns/{turn.pk}").json()
        assert (detail["audit"] is not None) is internal, name
        usage = caller.call("GET", f"/api/v1/conversations/{a}").json()["usage"]
        assert (usage is not None) is internal, name


@pytest.mark.django_db
def test_a_visitor_token_for_one_conversation_never_opens_another(world):
    # Visitor A's token with B's id in the URL: 404, and B is untouched.
    caller = world["callers"]["visitor_a"]
    b = world["b"]
    response = caller.call("POST", f"/api/v1/conversations/{b.pk}/messages", {"text": "hi"})
    assert response.status_code == 404
    assert Conversation.objects.get(pk=b.pk).message_count == 0


@pytest.mark.django_db
def test_invalid_credentials_are_rejected_not_treated_as_anonymous(world):
    from rest_framework.test import APIClient

    client = APIClient()
    for header in ["Bearer sk_nope", "Visitor forged", "Bearer", "Visitor a b"]:
        response = client.post("/api/v1/conversations", {}, format="json", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "authentication_failed"


@pytest.mark.django_db
def test_staff_session_needs_csrf_for_writes(default_agent):
    from tests.api.conftest import staff_caller

    staff = staff_caller("csrf-staff", csrf=True)
    assert staff.call("GET", "/api/v1/conversations").status_code == 200
    response = staff.call("POST", "/api/v1/conversations", {})
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_staff_without_permissions_sees_nothing(default_agent, world):
    from tests.api.conftest import staff_caller

    weak = staff_caller("weak", superuser=False)
    assert weak.call("GET", f"/api/v1/conversations/{world['a'].pk}").status_code == 404
    assert weak.call("GET", "/api/v1/conversations").status_code == 403


# The support groups over REST get what the console gives them (issue 14: the doors
# used to disagree; a Support agent could act in the console but not over the API).
# Posting a customer message is speaking as the customer: not a support role's job.
SUPPORT_ROLES: dict[str, dict[str, int]] = {
    "retrieve": {"viewer": 200, "agent": 200},
    "update_status": {"viewer": 403, "agent": 200},
    "handoff": {"viewer": 403, "agent": 200},
    "handback": {"viewer": 403, "agent": 200},
    "messages_list": {"viewer": 200, "agent": 200},
    "messages_create": {"viewer": 403, "agent": 403},
    "turn_retry": {"viewer": 403, "agent": 201},
    "turn_cancel": {"viewer": 403, "agent": 200},
    "rate": {"viewer": 403, "agent": 403},
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "agent"])
@pytest.mark.parametrize("name", list(SUPPORT_ROLES))
def test_support_groups_get_over_rest_what_the_console_gives_them(world, name, role):
    # Given a staff session in one of the support groups
    support_groups_sync()
    turn = _prepare(world, name)
    caller = staff_caller(f"{role}-user", superuser=False)
    user = get_user_model().objects.get(username=f"{role}-user")
    user.groups.add(Group.objects.get(name=VIEWER if role == "viewer" else AGENT))
    # When it calls the endpoint, then the status is the console's decision
    _, method, suffix, body, _ = next(e for e in ENDPOINTS if e[0] == name)
    path = f"/api/v1/conversations/{world['a'].pk}{suffix.format(turn=turn.pk)}"
    response = caller.call(method, path, body)
    assert response.status_code == SUPPORT_ROLES[name][role], response.content
