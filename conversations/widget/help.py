"""Public help-article pages: the knowledge base's published documents, one
server-rendered page each at `/help/<id>-<slug>/` (and an index at `/help/`), which the
widget links its citations to. Internal, inactive and missing documents are 404s alike,
so a page never says that an internal document exists. No script and no inline style:
the platform's Content-Security-Policy applies unchanged."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from conversations.knowledge.models import article_slug
from conversations.knowledge.selectors import public_document, public_documents, public_titles


def help_article_path(document_id: int, title: str) -> str:
    """The public page of a published document (the slug is the title's)."""
    return reverse("help-article", kwargs={"document_id": document_id, "slug": article_slug(title)})


def public_sources(sources: Any) -> list[dict[str, str]]:
    """The sources of an answer (`metadata.sources`) a customer may follow: published
    documents only, each once, best first, as `{"title", "url"}` (a path on the
    platform). Internal documents are left out, not shown unlinked: their titles may be
    internal too. One query."""
    if not isinstance(sources, list):
        return []
    ids = [s.get("document_id") for s in sources if isinstance(s, dict)]
    titles = public_titles(ids)
    shown: list[dict[str, str]] = []
    seen: set[int] = set()
    for document_id in ids:
        if document_id in titles and document_id not in seen:
            seen.add(document_id)
            shown.append({"title": titles[document_id], "url": help_article_path(document_id, titles[document_id])})
    return shown


@require_GET
def help_index(request: HttpRequest) -> HttpResponse:
    articles = [(d.title, help_article_path(d.pk, d.title)) for d in public_documents()]
    return render(request, "widget/help_index.html", {"articles": articles})


@require_GET
def help_article(request: HttpRequest, document_id: int, slug: str = "") -> HttpResponse:
    document = public_document(document_id)
    if document is None:
        raise Http404("No such help article.")
    canonical = help_article_path(document.pk, document.title)
    if request.path != canonical:
        return HttpResponsePermanentRedirect(canonical)  # renamed, or the bare id
    sections = []
    for passage in document.passages.all():
        # Headings are indexed as a path ("Title › Section"); the page shows the section.
        heading = passage.heading.split(" › ")[-1].strip()
        sections.append({"heading": "" if heading == document.title else heading, "text": passage.text})
    return render(request, "widget/help_article.html", {"document": document, "sections": sections})
