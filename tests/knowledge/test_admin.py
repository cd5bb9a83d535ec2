"""The knowledge admin: staff paste or upload documents, edit and delete them, search
them as the agent does, and see which answers cited them. Saves go through the services,
so the index always follows."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations.knowledge.models import Document
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_create
from tests.knowledge.helpers import append, new_conversation
from tests.knowledge.pdf import text_pdf

pytestmark = pytest.mark.django_db

ADD = reverse("admin:knowledge_document_add")


def _form(document: Document | None = None, **fields) -> dict:
    data = {
        "title": document.title if document else "",
        "body": document.body if document else "",
        "is_active": "on",
    }
    data.update(fields)
    return data


def _found(query: str) -> list[str]:
    return [hit.title for hit in knowledge_search(query=query)]


def test_staff_paste_a_document_and_it_is_searchable(admin_client):
    response = admin_client.post(ADD, _form(title="Warranty", body="# Warranty\n\nTwo years on grinders."))

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert _found("grinders warranty") == ["Warranty"]


def test_staff_upload_a_pdf(admin_client):
    upload = SimpleUploadedFile("care.pdf", text_pdf(["Descale the kettle monthly."], title="Kettle care"))

    response = admin_client.post(ADD, _form(upload=upload))

    assert response.status_code == 302
    document = Document.objects.get()
    assert document.title == "Kettle care" and document.source_name == "care.pdf"
    assert _found("descale") == ["Kettle care"]


def test_an_unsupported_upload_is_a_form_error(admin_client):
    upload = SimpleUploadedFile("virus.exe", b"MZ\x90\x00")

    response = admin_client.post(ADD, _form(title="Bad", upload=upload))

    assert response.status_code == 200
    assert "Unsupported file type .exe" in str(response.context["adminform"].form.errors["upload"])
    assert not Document.objects.exists()


def test_a_document_without_text_is_a_form_error(admin_client):
    response = admin_client.post(ADD, _form(title="Empty"))

    assert response.status_code == 200 and "body" in response.context["adminform"].form.errors


def test_staff_edit_reindexes(admin_client):
    document = document_create(title="Warranty", body="Two years on grinders.")
    url = reverse("admin:knowledge_document_change", args=[document.pk])

    response = admin_client.post(url, _form(document, body="Five years on kettles."))

    assert response.status_code == 302
    assert _found("grinders") == [] and _found("kettles") == ["Warranty"]
    assert Document.objects.get().passages.get().text == "Five years on kettles."


def test_staff_delete_removes_it_from_search(admin_client):
    document = document_create(title="Warranty", body="Two years on grinders.")
    url = reverse("admin:knowledge_document_delete", args=[document.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302 and _found("grinders") == []


def test_the_bulk_delete_action_removes_them_from_search(admin_client):
    documents = [document_create(title=f"Doc {n}", body=f"Grinders note {n}.") for n in range(3)]

    admin_client.post(
        reverse("admin:knowledge_document_changelist"),
        {"action": "delete_selected", "_selected_action": [d.pk for d in documents], "post": "yes"},
    )

    assert not Document.objects.exists() and _found("grinders") == []


def test_the_changelist_search_uses_full_text_ranking(admin_client):
    document_create(title="Shipping", body="Parcels travel with DHL.")
    document_create(title="Returns", body="Send unused items back.")

    response = admin_client.get(reverse("admin:knowledge_document_changelist"), {"q": "dhl parcels"})

    assert [d.title for d in response.context["cl"].result_list] == ["Shipping"]


def test_the_document_page_lists_answers_that_cited_it(admin_client):
    document = document_create(title="Warranty", body="Two years on grinders.")
    conversation = new_conversation()
    source = {"document_id": document.pk, "title": "Warranty", "passage_id": 1, "score": 1.0, "snippet": "Two"}
    append(conversation, [
        {"kind": "user", "text": "warranty?"},
        {"kind": "assistant", "text": 'From "Warranty": Two years.', "metadata": {"sources": [source]}},
    ])

    response = admin_client.get(reverse("admin:knowledge_document_change", args=[document.pk]))

    page = response.content.decode()
    assert f"Conversation {str(conversation.pk)[:8]} · item #2" in page
    assert "Two years on grinders." in page  # the passages table
