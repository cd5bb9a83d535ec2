"""Bad input gets a clear error in the one shape and loses nothing; limits answer 429."""

from __future__ import annotations

import json

import pytest

from conversations.models import Message, Turn
from conversations.models.turn import TurnStatus
from tests.api.conftest import key_caller, visitor_caller
from tests.api.schema_check import assert_matches_schema

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(api_key):
    return api_key.call("POST", "/api/v1/conversations", {"customer_id": "u1"}).json()


def _post_raw(caller, path, body: bytes, content_type="application/json"):
    return caller.client.generic("POST", path, body, content_type=content_type, **caller.headers)


def _error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    return body["error"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"text": "hi"', "Malformed JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b'{"text": NaN}', "NaN"),
        (b"[" * 50_000 + b"]" * 50_000, "nested"),
        (b'{"text": "\\ud800 lone surrogate"}', "surrogate"),
    ],
    ids=["syntax", "utf8", "nan", "deep", "surrogate"],
)
def test_malformed_json_is_a_400_and_stores_nothing(api_key, conversation, raw, why):
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    error = _error(_post_raw(api_key, path, raw), 400, "malformed_request")
    assert why in error["message"]
    assert Message.objects.count() == 0


def test_a_body_that_is_not_an_object_is_a_400(api_key, conversation):
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    _error(_post_raw(api_key, path, b'["hi"]'), 400, "invalid")


def test_field_errors_name_the_field(api_key):
    response = api_key.call("POST", "/api/v1/conversations", {"agent": "x", "metadata": [1]})
    error = _error(response, 400, "invalid")
    assert set(error["fields"]) == {"agent", "metadata"}
    assert_matches_schema(response, "POST", "/api/v1/conversations")


def test_an_oversize_message_is_a_413_with_the_limit_and_stores_nothing(api_key, conversation, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "MAX_MESSAGE_CHARS": 100}
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    response = api_key.call("POST", path, {"text": "x" * 101})
    error = _error(response, 413, "too_large")
    assert "limit is 100" in error["message"] and "text" in error["fields"]
    assert_matches_schema(response, "POST", path)
    assert Message.objects.count() == 0
    assert api_key.call("POST", path, {"text": "x" * 100}).status_code == 201


def test_an_oversize_body_is_a_413_before_it_is_parsed(api_key, conversation, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "API_MAX_BODY_BYTES": 1000}
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    _error(_post_raw(api_key, path, b'{"text": "' + b"y" * 2000 + b'"}'), 413, "too_large")


def test_blank_text_and_nul_characters_are_rejected(api_key, conversation):
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    assert "text" in _error(api_key.call("POST", path, {"text": "   "}), 400, "invalid")["fields"]
    assert "text" in _error(api_key.call("POST", path, {"text": "a\x00b"}), 400, "invalid")["fields"]


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"text": "hi", "metadata": {"order": "a\x00b"}}, "invalid", "metadata"),
    ({"text": "hi", "metadata": {"a\x00b": 1}}, "invalid", "metadata"),
    ({"text": "hi", "metadata": {"deep": [{"x": ["\x00"]}]}}, "invalid", "metadata"),
    ({"text": "half a pair \ud800"}, "malformed_request", None),
    ({"text": "hi", "metadata": {"x": "\udfff"}}, "malformed_request", None),
])
def test_text_no_database_can_store_is_a_400_and_stores_nothing(api_key, conversation, body, code, field):
    """NUL characters (PostgreSQL refuses them) and unpaired surrogates (no driver can
    encode them) are refused the same way on every database."""
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    raw = json.dumps(body).encode()  # as escapes: \u0000, \ud800
    error = _error(_post_raw(api_key, path, raw), 400, code)
    assert field is None or field in error["fields"]
    assert Message.objects.count() == 0


def test_a_conversation_with_unstorable_metadata_is_a_400(api_key):
    raw = json.dumps({"metadata": {"plan": "pro\x00"}}).encode()
    assert "metadata" in _error(_post_raw(api_key, "/api/v1/conversations", raw), 400, "invalid")["fields"]


def test_form_bodies_are_unsupported(api_key, conversation):
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    _error(_post_raw(api_key, path, b"text=hi", "application/x-www-form-urlencoded"), 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "suffix",
    ["", "/messages", "/turns", "/turns/00000000-0000-0000-0000-000000000000", "/turns/not-a-uuid/retry"],
)
def test_unknown_and_malformed_ids_are_404(api_key, conversation, suffix):
    for conversation_id in ["00000000-0000-0000-0000-000000000000", "not-a-uuid", conversation["id"]]:
        path = f"/api/v1/conversations/{conversation_id}{suffix}"
        method = "POST" if suffix.endswith("retry") else "GET"
        response = api_key.call(method, path)
        if conversation_id == conversation["id"] and suffix in ("", "/messages", "/turns"):
            assert response.status_code == 200
            continue
        _error(response, 404, "not_found")


def test_unknown_api_paths_answer_json_404(api_key):
    _error(api_key.call("GET", "/api/v1/nothing-here"), 404, "not_found")


def test_bad_query_parameters_are_a_400(api_key, conversation):
    path = f"/api/v1/conversations/{conversation['id']}/messages?after=-1&limit=100000"
    error = _error(api_key.call("GET", path), 400, "invalid")
    assert set(error["fields"]) == {"after", "limit"}
    _error(api_key.call("GET", "/api/v1/conversations?updated_since=yesterday"), 400, "invalid")
    _error(api_key.call("GET", "/api/v1/conversations?cursor=garbage"), 404, "not_found")


def test_state_conflicts_are_409(api_key, conversation):
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    turn = api_key.call("POST", path, {"text": "hello", "client_id": "c1"}).json()["turn"]
    Turn.objects.filter(pk=turn["id"]).update(status=TurnStatus.COMPLETED)
    turn_path = f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}"
    _error(api_key.call("POST", f"{turn_path}/cancel"), 409, "turn_finished")
    _error(api_key.call("POST", f"{turn_path}/retry"), 409, "not_retryable")
    _error(api_key.call("POST", path, {"text": "other text", "client_id": "c1"}), 409, "client_id_reused")


def test_unexpected_failures_answer_a_json_500_without_internals(api_key, conversation, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("conversations.api.views.conversations.conversation_set_status", broken)
    response = api_key.call("PATCH", f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"})
    error = _error(response, 500, "internal")
    assert "hunter2" not in response.content.decode()
    assert error["message"] == "Internal server error."


def test_visitors_are_throttled_per_visitor_with_retry_after(default_agent, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "API_RATE_VISITOR": "2/min"}
    from rest_framework.test import APIClient

    first = APIClient().post("/api/v1/conversations", {}, format="json").json()
    second = APIClient().post("/api/v1/conversations", {}, format="json").json()
    from conversations.models import Conversation

    visitor_a = visitor_caller(Conversation.objects.get(pk=first["id"]))
    visitor_b = visitor_caller(Conversation.objects.get(pk=second["id"]))
    path = f"/api/v1/conversations/{first['id']}"
    assert [visitor_a.call("GET", path).status_code for _ in range(2)] == [200, 200]
    limited = visitor_a.call("GET", path)
    _error(limited, 429, "throttled")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert_matches_schema(limited, "GET", path)
    # Another visitor has its own allowance.
    assert visitor_b.call("GET", f"/api/v1/conversations/{second['id']}").status_code == 200


def test_a_key_can_carry_its_own_rate(default_agent):
    from conversations.api.models import ApiKey

    caller = key_caller("acme", name="slow")
    ApiKey.objects.filter(name="slow").update(rate_limit="1/hour")
    assert caller.call("GET", "/api/v1/conversations").status_code == 200
    limited = caller.call("GET", "/api/v1/conversations")
    _error(limited, 429, "throttled")
    assert int(limited.headers["Retry-After"]) > 60


def test_anonymous_creation_is_throttled_per_address(default_agent, settings):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "API_RATE_ANONYMOUS": "1/min"}
    from rest_framework.test import APIClient

    client = APIClient()
    assert client.post("/api/v1/conversations", {}, format="json").status_code == 201
    _error(client.post("/api/v1/conversations", {}, format="json"), 429, "throttled")
    other = APIClient(REMOTE_ADDR="10.0.0.2")
    assert other.post("/api/v1/conversations", {}, format="json").status_code == 201



def test_a_number_where_text_belongs_is_refused_not_coerced(api_key, conversation):
    # Given a client that sends JSON numbers for text fields (the schema says strings)
    base = f"/api/v1/conversations/{conversation['id']}"
    # When it posts them, then each is a 400 naming the field, and nothing changes
    handoff = _error(api_key.call("POST", f"{base}/handoff", {"reason": 12345}), 400, "invalid")
    assert "reason" in handoff["fields"]
    message = _error(api_key.call("POST", f"{base}/messages", {"text": 42}), 400, "invalid")
    assert "text" in message["fields"]
    after = api_key.call("GET", base).json()
    assert after["status"] == "open" and after["message_count"] == 0
