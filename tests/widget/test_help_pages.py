"""Public help-article pages (`/help/<id>-<slug>/`), which documents a customer may
follow from an answer's citations, and what visitors are told of an answer's sources on
the REST API (the same customer view the widget socket applies), as a customer and a
staff member see them."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conversations.customer_view import customer_message, customer_sources
from conversations.knowledge.models import Document
from conversations.knowledge.services import document_create, document_save
from conversations.models import StaffProfile
from conversations.services.conversations import conversation_create
from conversations.services.messages import staff_reply_post

pytestmark = pytest.mark.django_db


def _answer(*documents: Document) -> dict:
    sources = [
        {"document_id": d.pk, "title": d.title, "passage_id": 1, "score": 1.0, "snippet": "..."} for d in documents
    ]
    return {"kind": "assistant", "text": "From the help", "metadata": {"sources": sources}}


def test_a_published_article_has_a_readable_page_with_its_passages_as_text(client: Client):
    doc = document_create(
        title="Gift wrapping & cards", body="# Gift wrapping\n\nWe wrap for $3.\n\n## Cards\n\nA card <b>is</b> free.",
        is_public=True,
    )
    response = client.get(f"/help/{doc.pk}-gift-wrapping-cards/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Gift wrapping &amp; cards</h1>" in html
    assert "<h2>Cards</h2>" in html and "A card &lt;b&gt;is&lt;/b&gt; free." in html  # text, never HTML
    assert "<script" not in html and "style=" not in html  # nothing the CSP would have to allow
    assert "script-src 'self'" in response["Content-Security-Policy"]
    index = client.get("/help/").content.decode()
    assert f'href="/help/{doc.pk}-gift-wrapping-cards/"' in index


def test_the_bare_id_and_an_old_slug_redirect_to_the_current_address(client: Client):
    doc = document_create(title="Returns", body="Thirty days.", is_public=True)
    assert client.get(f"/help/{doc.pk}/").headers["Location"] == f"/help/{doc.pk}-returns/"
    doc.title = "Returns and refunds"
    document_save(document=doc)
    response = client.get(f"/help/{doc.pk}-returns/")
    assert response.status_code == 301 and response.headers["Location"] == f"/help/{doc.pk}-returns-and-refunds/"


def test_internal_inactive_and_missing_documents_are_the_same_404(client: Client):
    internal = document_create(title="Refund override codes", body="Staff only: code 1234.")
    inactive = document_create(title="Old policy", body="Gone.", is_public=True, is_active=False)
    assert not internal.is_public  # new documents start internal
    for path in (f"/help/{internal.pk}-refund-override-codes/", f"/help/{inactive.pk}/", "/help/999999-nothing/"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"1234" not in response.content and b"Refund override" not in response.content
    assert "Refund override" not in client.get("/help/").content.decode()


def test_a_customer_is_shown_only_the_published_sources_of_an_answer_as_links():
    public = document_create(title="Shipping", body="Three days.", is_public=True)
    internal = document_create(title="Carrier contract notes", body="Rates.")
    message = _answer(internal, public, public)
    sources = customer_sources(message)
    assert sources == [{"title": "Shipping", "url": f"/help/{public.pk}-shipping/"}]
    shown = customer_message(message, sources=sources)
    assert shown is not None and shown["metadata"] == {"sources": sources}
    assert customer_message(_answer(internal), sources=customer_sources(_answer(internal)))["metadata"] == {}


def test_the_api_shows_a_visitor_the_links_and_staff_the_raw_sources(client: Client, default_agent):
    from conversations.access import visitor_token_issue
    from conversations.services.items import item_append

    public = Document.objects.get(title="Shipping and delivery")  # a demo article: published
    internal = document_create(title="Carrier contract notes", body="Rates.")
    conversation = conversation_create(channel="widget")
    item_append(conversation=conversation, kind="assistant", text="From the help", metadata=_answer(internal, public)["metadata"])
    token = visitor_token_issue(conversation)
    visitor = client.get(f"/api/v1/conversations/{conversation.pk}/messages", headers={"Authorization": f"Visitor {token}"})
    assert visitor.status_code == 200, visitor.content
    answer = visitor.json()["results"][-1]
    assert answer["metadata"] == {"sources": [{"title": "Shipping and delivery", "url": f"/help/{public.pk}-shipping-and-delivery/"}]}
    assert "Carrier" not in visitor.content.decode()


def test_a_staff_reply_carries_the_profile_name_and_avatar_customers_see(default_agent):
    user = get_user_model().objects.create_user("dana", password="x", is_staff=True, is_superuser=True, first_name="Dana", last_name="K")
    conversation = conversation_create(channel="widget")
    first = staff_reply_post(conversation=conversation, actor=user, text="Hello")
    assert first.metadata == {"author_name": "Dana K"}  # no profile: the full name, no avatar
    StaffProfile.objects.create(user=user, display_name="Dana from Northwind", avatar_url="https://cdn.example/dana.png")
    second = staff_reply_post(conversation=conversation, actor=user, text="Checking")
    shown = customer_message({"kind": "staff", "text": "Checking", "metadata": second.metadata})
    assert shown["metadata"] == {"author_name": "Dana from Northwind", "author_avatar_url": "https://cdn.example/dana.png"}
    first.refresh_from_db()
    assert first.metadata["author_name"] == "Dana K"  # earlier replies keep the name they were sent with


def test_the_admin_shows_the_flag_and_the_public_address(admin_client: Client):
    doc = document_create(title="Warranty", body="Two years.")
    page = admin_client.get(f"/admin/knowledge/document/{doc.pk}/change/").content.decode()
    assert 'name="is_public"' in page
    assert re.search(rf"/help/{doc.pk}-warranty/\s*\(not served: internal\)", page)
    doc.is_public = True
    document_save(document=doc)
    page = admin_client.get(f"/admin/knowledge/document/{doc.pk}/change/").content.decode()
    assert f'<a href="/help/{doc.pk}-warranty/">' in page
