"""API keys: created in the admin (shown once, stored hashed), scoped, revocable."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from conversations.api.keys import api_key_authenticate
from conversations.api.models import ApiClient, ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged_in(client):
    user = get_user_model().objects.create(username="boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_creating_a_key_in_the_admin_shows_it_once_and_stores_only_a_digest(admin_client_logged_in, default_agent):
    integration = ApiClient.objects.create(name="acme")
    response = admin_client_logged_in.post(
        "/admin/apikeys/apikey/add/",
        {"client": integration.pk, "name": "billing backend", "scopes": ["read", "write"], "rate_limit": "", "expires_at": ""},
    )
    assert response.status_code == 200
    raw = re.search(r"sk_[a-z0-9]{10}_[\w-]+", response.content.decode()).group(0)
    assert "no-store" in response.headers["Cache-Control"]
    key = ApiKey.objects.get(name="billing backend")
    assert key.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.values().get(pk=key.pk))
    assert key.created_by.username == "boss" and key.scopes == ["read", "write"]
    # The change page never shows it again.
    page = admin_client_logged_in.get(f"/admin/apikeys/apikey/{key.pk}/change/").content.decode()
    assert raw not in page and f"sk_{key.prefix}_" in page
    # And it works.
    response = APIClient().get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_a_bad_rate_limit_is_refused_by_the_admin_form(admin_client_logged_in):
    integration = ApiClient.objects.create(name="acme")
    response = admin_client_logged_in.post(
        "/admin/apikeys/apikey/add/",
        {"client": integration.pk, "name": "k", "scopes": ["read"], "rate_limit": "lots", "expires_at": ""},
    )
    assert response.status_code == 200 and b"Invalid rate" in response.content
    assert not ApiKey.objects.exists()


def test_revoking_in_the_admin_stops_the_key_at_once(admin_client_logged_in, default_agent, capsys):
    call_command("api_key_create", client="acme", name="ci", quiet=True)
    raw = capsys.readouterr().out.strip()
    api = APIClient()
    assert api.get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200
    key = ApiKey.objects.get(name="ci")
    admin_client_logged_in.post(
        "/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [key.pk]}
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    response = api.get("/api/v1/conversations", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "authentication_failed"


def test_expired_and_tampered_keys_do_not_authenticate(default_agent, capsys):
    call_command("api_key_create", client="acme", name="short", quiet=True)
    raw = capsys.readouterr().out.strip()
    assert api_key_authenticate(raw) is not None
    assert api_key_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    ApiKey.objects.filter(name="short").update(expires_at=timezone.now())
    assert api_key_authenticate(raw) is None


def test_a_rotated_key_keeps_the_integrations_conversations(default_agent, capsys):
    call_command("api_key_create", client="acme", name="old", quiet=True)
    old = capsys.readouterr().out.strip()
    created = APIClient().post(
        "/api/v1/conversations", {"customer_id": "u1"}, format="json", HTTP_AUTHORIZATION=f"Bearer {old}"
    ).json()
    call_command("api_key_create", client="acme", name="new", quiet=True)
    new = capsys.readouterr().out.strip()
    ApiKey.objects.filter(name="old").update(revoked_at=timezone.now())
    response = APIClient().get(f"/api/v1/conversations/{created['id']}", HTTP_AUTHORIZATION=f"Bearer {new}")
    assert response.status_code == 200
