"""Cut-over: imported conversations belong to an API client, and a customer identified by
the same `customer_id` lands in their imported history, through the REST API and the
widget's identified-customer path (the site's backend starts the conversation with its
key and hands the visitor token to the widget). The guide's cut-over steps run as written."""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from conversations.api.models import ApiClient, ClientConversation
from conversations.models import Conversation
from tests.api.conftest import key_caller
from tests.importers import fake_assistants as fa
from tests.importers.conftest import run_import

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-assistants.md"


def _export(folder: Path, threads: dict[str, str]) -> None:
    """One thread per customer: {thread id: customer id}."""
    folder.mkdir(parents=True, exist_ok=True)
    for thread_id, customer in threads.items():
        objects = [
            fa.thread(thread_id, created_at=T0, metadata={"customer_id": customer}),
            fa.message(f"{thread_id}_m1", thread_id, "user", [fa.text("My parcel is late")], created_at=T0 + 1),
            fa.message(f"{thread_id}_m2", thread_id, "assistant", [fa.text("Sorry! It ships today.")],
                       created_at=T0 + 2),
        ]
        (folder / f"{thread_id}.json").write_text(json.dumps(objects))


def test_an_imported_customer_lands_in_their_history_through_rest_and_the_widget(tmp_path, demo):
    ApiClient.objects.create(name="acme")
    _export(tmp_path / "export", {"thread_1": "cust-001"})
    acme = key_caller("acme")

    report = run_import(str(tmp_path / "export"), "--api-client", "acme")

    imported = Conversation.objects.get(external_id="thread_1")
    assert ClientConversation.objects.get(conversation=imported).client.name == "acme"
    assert report["imported"][0]["api_client"] == "acme"
    listed = acme.call("GET", "/api/v1/conversations?customer=cust-001").json()
    assert [c["id"] for c in listed["results"]] == [str(imported.pk)]
    assert acme.call("GET", f"/api/v1/conversations/{imported.pk}").status_code == 200

    started = acme.call("POST", "/api/v1/conversations", {"customer_id": "cust-001"})

    assert started.status_code == 200, started.content
    body = started.json()
    assert body["id"] == str(imported.pk) and body["resumed_imported"] is True
    assert Conversation.objects.filter(customer_id="cust-001").count() == 1
    # The widget, given that visitor token by the site's backend, resumes the imported history.
    widget = Client().post("/widget/session", json.dumps({"token": body["visitor_token"]}),
                           content_type="application/json")
    assert widget.status_code == 200
    assert widget.json()["conversation"] == str(imported.pk)
    assert widget.json()["last_seq"] == 2

    # A customer with no imported history still gets a new conversation.
    fresh = acme.call("POST", "/api/v1/conversations", {"customer_id": "cust-new"})
    assert fresh.status_code == 201 and fresh.json()["id"] != str(imported.pk)


def test_another_clients_key_never_reaches_an_imported_conversation(tmp_path, demo):
    ApiClient.objects.create(name="acme")
    _export(tmp_path / "export", {"thread_1": "cust-001", "thread_2": "cust-002"})
    run_import(str(tmp_path / "export"), "--api-client", "acme")
    other = key_caller("other-co")
    imported = Conversation.objects.get(external_id="thread_1")

    created = other.call("POST", "/api/v1/conversations", {"customer_id": "cust-001"})

    assert created.status_code == 201 and created.json()["id"] != str(imported.pk)
    assert other.call("GET", f"/api/v1/conversations/{imported.pk}").status_code == 404


def test_a_mapping_column_assigns_the_api_client_per_thread(tmp_path, demo):
    ApiClient.objects.create(name="acme")
    ApiClient.objects.create(name="globex")
    _export(tmp_path / "export", {"thread_1": "cust-001", "thread_2": "cust-002", "thread_3": "cust-003"})
    mapping = tmp_path / "customers.csv"
    mapping.write_text("customer_id,thread_id,api_client\ncust-001,thread_1,globex\ncust-002,thread_2,\n"
                       "cust-003,thread_3,nobody\n")

    report = run_import(str(tmp_path / "export"), "--mapping", str(mapping), "--api-client", "acme")

    owners = dict(ClientConversation.objects.values_list("conversation__external_id", "client__name"))
    assert owners == {"thread_1": "globex", "thread_2": "acme"}  # the column wins over --api-client
    (failure,) = [f for f in report["failed"] if f["id"] == "thread_3"]
    assert "nobody" in failure["reason"]
    assert not Conversation.objects.filter(external_id="thread_3").exists()


def test_an_unknown_api_client_stops_the_import_before_anything_is_written(tmp_path, demo):
    _export(tmp_path / "export", {"thread_1": "cust-001"})

    with pytest.raises(CommandError, match="No API client is named 'acme'"):
        call_command("import_conversations", str(tmp_path / "export"), "--api-client", "acme",
                     "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())

    assert not Conversation.objects.exists()


def test_a_re_run_with_api_client_assigns_conversations_imported_without_one(tmp_path, demo):
    ApiClient.objects.create(name="acme")
    _export(tmp_path / "export", {"thread_1": "cust-001"})
    run_import(str(tmp_path / "export"))
    assert not ClientConversation.objects.exists()

    run_import(str(tmp_path / "export"), "--api-client", "acme")

    assert ClientConversation.objects.get().conversation.external_id == "thread_1"


def _guide_cutover_commands() -> tuple[list[list[str]], dict]:
    section = GUIDE.read_text().split("## Cut-over, step by step", 1)[1].split("\n## ", 1)[0]
    commands = [
        shlex.split(line.replace("\\\n", " "))
        for line in re.findall(r"^python manage\.py (?:[^\n]*\\\n)*[^\n]*$", section, flags=re.M)
    ]
    body = json.loads(re.search(r"-d '(\{.*?\})'", section).group(1))
    return commands, body


def test_the_guides_cut_over_steps_run_as_written(tmp_path, demo, monkeypatch):
    commands, body = _guide_cutover_commands()
    assert commands, "the guide's cut-over section names its commands"
    ApiClient.objects.create(name="Acme backend")
    monkeypatch.chdir(tmp_path)
    _export(tmp_path / "exports", {"thread_abc": "cust-001"})
    Path("customers.csv").write_text("customer_id,thread_id\ncust-001,thread_abc\n")

    for command in commands:
        assert command[:3] == ["python", "manage.py", "import_conversations"]
        call_command(*command[2:], "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())

    imported = Conversation.objects.get(external_id="thread_abc")
    assert imported.customer_id == "cust-001"
    acme = key_caller("Acme backend")
    started = acme.call("POST", "/api/v1/conversations", body)
    assert started.status_code == 200 and started.json()["id"] == str(imported.pk)
