"""What the widget is told about who answers (the site's provenance setting, honest about
the offline model) and how far the customer's messages are read, through the session
endpoint; and the clean-up of empty widget conversations (`widget_prune_empty`)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from conversations.access import visitor_token_issue
from conversations.models import Conversation
from conversations.services.conversations import conversation_create
from conversations.services.messages import message_post
from conversations.widget.presentation import staff_read_mark

pytestmark = pytest.mark.django_db


def start(client: Client, body: dict | None = None) -> dict:
    response = client.post("/widget/session", json.dumps(body or {}), content_type="application/json")
    assert response.status_code in (200, 201), response.content
    return response.json()


@pytest.fixture
def real_provider(default_agent, monkeypatch):
    """The default agent with a provider key of its own: not the offline model."""
    monkeypatch.setenv("WIDGET_TEST_PROVIDER_KEY", "sk-test")
    default_agent.provider_api_key_env = "WIDGET_TEST_PROVIDER_KEY"
    default_agent.model = "gpt-test-1"
    default_agent.save()
    return default_agent


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("model", {"name": "gpt-test-1", "label": "gpt-test-1", "offline": False, "provenance": "model"}),
        ("assistant", {"name": "", "label": "", "offline": False, "provenance": "assistant"}),
        ("off", {"name": "", "label": "", "offline": False, "provenance": "off"}),
    ],
)
def test_the_site_chooses_whether_customers_see_the_model_name(client, settings, real_provider, mode, expected):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_PROVENANCE": mode}
    assert start(client)["model"] == expected


@pytest.mark.parametrize("mode", ["model", "assistant", "off"])
def test_the_offline_model_always_says_what_it_is(client, settings, default_agent, mode):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, "WIDGET_PROVENANCE": mode}
    model = start(client)["model"]
    assert model["offline"] is True and model["provenance"] == "offline"
    assert model["label"] == "Offline demo model (no AI provider configured)"


def test_read_seq_follows_staff_marks_and_never_goes_back(client, default_agent):
    conversation = conversation_create(channel="widget")
    message_post(conversation=conversation, text="hello", client_id="c1")
    token = visitor_token_issue(conversation)
    assert start(client, {"token": token})["read_seq"] == 0  # stored, nobody has read it yet
    assert staff_read_mark(conversation_id=conversation.pk, seq=1) is True
    assert staff_read_mark(conversation_id=conversation.pk, seq=1) is False  # nothing moved
    assert staff_read_mark(conversation_id=conversation.pk, seq=0) is False
    assert start(client, {"token": token})["read_seq"] == 1


def test_prune_removes_only_old_empty_open_widget_conversations(default_agent, capsys):
    old = timezone.now() - timedelta(days=2)
    empty_old = conversation_create(channel="widget")
    empty_new = conversation_create(channel="widget")
    written_old = conversation_create(channel="widget")
    message_post(conversation=written_old, text="hello", client_id="c1")
    api_old = conversation_create(channel="api")
    handed_old = conversation_create(channel="widget")
    Conversation.objects.filter(pk=handed_old.pk).update(status="waiting_on_staff", ai_paused=True)
    Conversation.objects.exclude(pk=empty_new.pk).update(created_at=old)

    call_command("widget_prune_empty", "--dry-run")
    assert "would delete 1 " in capsys.readouterr().out
    assert Conversation.objects.count() == 5

    call_command("widget_prune_empty", "--older-than-hours", "24")
    assert "deleted 1 " in capsys.readouterr().out
    assert set(Conversation.objects.values_list("pk", flat=True)) == {
        empty_new.pk, written_old.pk, api_old.pk, handed_old.pk
    }
    assert not Conversation.objects.filter(pk=empty_old.pk).exists()
