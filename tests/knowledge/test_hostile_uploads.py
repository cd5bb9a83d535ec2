"""Hostile knowledge uploads through the admin: a decompression bomb, a small PDF that
expands to millions of characters, too many pages, a file too slow to read and an
oversized text file are each refused with a form error that says why, never a 500, and
nothing is stored."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from conversations.knowledge.models import Document
from tests.knowledge.pdf import compressed_pdf, text_pdf

pytestmark = pytest.mark.django_db

ADD = reverse("admin:knowledge_document_add")


def _upload(admin_client, name: str, data: bytes):
    response = admin_client.post(ADD, {"title": "", "body": "", "is_active": "on",
                                       "upload": SimpleUploadedFile(name, data)})
    assert response.status_code == 200, response.status_code
    return " ".join(response.context["adminform"].form.errors["upload"])


def _limit(settings, **options):
    settings.SUPPORT_PLATFORM = {**settings.SUPPORT_PLATFORM, **options}


def test_a_pdf_decompression_bomb_is_a_form_error(admin_client):
    bomb = compressed_pdf(b"BT /F1 12 Tf 72 720 Td (A) Tj ET" + b" " * 100_000_000)
    assert len(bomb) < 200_000

    error = _upload(admin_client, "bomb.pdf", bomb)

    assert "compression bomb" in error
    assert not Document.objects.exists()


def test_a_small_pdf_expanding_to_millions_of_characters_is_refused(admin_client):
    expander = compressed_pdf(b"BT /F1 12 Tf 72 720 Td (" + b"A " * 5_000_000 + b") Tj ET")
    assert len(expander) < 20_000

    error = _upload(admin_client, "expander.pdf", expander)

    assert "more than 1,000,000 characters" in error
    assert not Document.objects.exists()


def test_a_pdf_with_too_many_pages_is_refused(admin_client, settings):
    _limit(settings, KNOWLEDGE_MAX_PDF_PAGES=5)
    pages = compressed_pdf(b"BT /F1 12 Tf 72 720 Td (Descale monthly.) Tj ET", pages=6)

    error = _upload(admin_client, "manual.pdf", pages)

    assert "has 6 pages; the limit is 5" in error


def test_a_pdf_that_takes_too_long_to_read_is_refused(admin_client, settings):
    _limit(settings, KNOWLEDGE_EXTRACT_SECONDS=0.01)

    error = _upload(admin_client, "care.pdf", text_pdf(["Descale the kettle monthly."]))

    assert "took longer than 0.01 seconds" in error


def test_a_text_file_over_the_character_limit_is_refused(admin_client, settings):
    _limit(settings, KNOWLEDGE_MAX_CHARS=1000)

    error = _upload(admin_client, "notes.md", b"# Notes\n\n" + b"word " * 300)

    assert "more than 1,000 characters" in error


def test_a_pdf_within_the_limits_still_imports(admin_client, settings):
    _limit(settings, KNOWLEDGE_MAX_PDF_PAGES=6)
    pages = compressed_pdf(b"BT /F1 12 Tf 72 720 Td (Descale monthly.) Tj ET", pages=6)

    response = admin_client.post(ADD, {"title": "Manual", "body": "", "is_active": "on",
                                       "upload": SimpleUploadedFile("manual.pdf", pages)})

    assert response.status_code == 302
    assert Document.objects.get().body.count("Descale monthly.") == 6
