"""Documents from pasted text and uploaded Markdown, text, HTML and PDF files, split into
passages under the token cap; bad uploads are refused with a clear error."""

from __future__ import annotations

import pytest

from conversations.errors import InvalidInput, PayloadTooLarge
from conversations.knowledge.models import SourceFormat
from conversations.knowledge.services import document_create
from conversations.knowledge.text import PASSAGE_TOKENS, html_to_text, split_passages, tokens_of
from tests.knowledge.pdf import text_pdf

pytestmark = pytest.mark.django_db


def test_markdown_headings_start_passages_with_their_heading_path():
    passages = split_passages(
        "# Returns\n\nIntro.\n\n## Refunds\n\nRefunds take 5 days.\n\n```\n# not a heading\n```\n\n# Exchanges\n\nSwap it."
    )

    assert [(p.heading, p.text) for p in passages] == [
        ("Returns", "Intro."),
        ("Returns › Refunds", "Refunds take 5 days.\n\n```\n# not a heading\n```"),
        ("Exchanges", "Swap it."),
    ]


def test_long_text_is_split_within_the_token_cap():
    paragraph = " ".join(f"Sentence number {n} explains one more detail of the policy." for n in range(200))
    text = f"# Policy\n\n{paragraph}\n\n{'x' * 9000}\n\nShort closing paragraph."

    passages = split_passages(text)

    assert len(passages) > 5
    assert all(0 < p.tokens == tokens_of(p.text) <= PASSAGE_TOKENS for p in passages)
    assert "Sentence number 0 " in passages[0].text and passages[-1].text.endswith("Short closing paragraph.")


def test_a_pasted_document_keeps_its_text():
    document = document_create(title="Hours", body="We are open 9-18 CET.")

    assert document.source_format == SourceFormat.PASTE
    assert document.passage_count == 1 and document.indexed_at is not None


def test_a_markdown_upload_takes_its_title_from_the_first_heading():
    document = document_create(upload=("care.md", b"# Caring for your grinder\n\nBrush the burrs weekly."))

    assert document.title == "Caring for your grinder"
    assert document.source_format == SourceFormat.MARKDOWN and document.source_name == "care.md"
    assert document.passages.get().text == "Brush the burrs weekly."


def test_a_plain_text_upload_is_decoded_as_utf8():
    document = document_create(title="Café", upload=("cafe.txt", "Crème brûlée beans.\r\n".encode()))

    assert document.body == "Crème brûlée beans." and document.source_format == SourceFormat.TEXT


def test_html_is_reduced_to_text_without_scripts_or_markup():
    html = (
        "<html><head><title>Help &amp; FAQ</title><style>p{color:red}</style>"
        "<script>alert('x')</script></head><body><h1>Returns</h1><p>Return within <b>30</b> days."
        "</p><img src=x onerror=alert(1)><ul><li>Unused</li><li>Boxed</li></ul></body></html>"
    )

    text, title = html_to_text(html)
    document = document_create(upload=("faq.html", html.encode()))

    assert title == "Help & FAQ" and document.title == "Help & FAQ"
    assert text == "# Returns\n\nReturn within 30 days.\n\n- Unused\n- Boxed"
    assert "alert" not in document.body and "<" not in document.body and "color" not in document.body
    assert document.passages.get().heading == "Returns"


def test_a_pdf_upload_is_extracted():
    data = text_pdf(["Warranty terms", "Grinders carry a two-year warranty."], title="Warranty")

    document = document_create(upload=("warranty.pdf", data))

    assert document.title == "Warranty" and document.source_format == SourceFormat.PDF
    assert "two-year warranty" in document.body


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("tool.exe", b"MZ", InvalidInput),
        ("empty.md", b"   \n", InvalidInput),
        ("broken.pdf", b"%PDF-1.4 not really", InvalidInput),
        ("huge.txt", b"a" * (10 * 1024 * 1024 + 1), PayloadTooLarge),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(name, data, error):
    from conversations.knowledge.models import Document

    with pytest.raises(error) as caught:
        document_create(title="Bad", upload=(name, data))

    assert caught.value.fields.get("upload")
    assert not Document.objects.exists()


def test_a_document_needs_a_title_and_text():
    with pytest.raises(InvalidInput):
        document_create(title=" ", body="text")
    with pytest.raises(InvalidInput):
        document_create(title="Title", body=" \n ")
