"""Reading the knowledge base: the ranked passage search used by the tool and the admin,
and the published help articles (public pages, cited answers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Q

from conversations.knowledge.models import Document, Passage
from conversations.knowledge.ranking import fuse, query_words
from conversations.knowledge.search import full_text, passage_terms, title_match
from conversations.knowledge.semantic import CANDIDATES, embedder, semantic_search

DEFAULT_LIMIT = 4
# RRF weights of the full-text and the semantic ranking (tuned on the labelled set's
# tuning split, `manage.py bench_knowledge_search`).
FUSION_WEIGHTS = (1.0, 2.0)


@dataclass(frozen=True)
class SearchResult:
    document_id: int
    title: str
    passage_id: int
    heading: str
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def knowledge_search(*, query: str, limit: int = DEFAULT_LIMIT) -> list[SearchResult]:
    """The best passages of active documents for `query`, best first. Any text is a valid
    query: operators and quotes are plain characters, and a query with no searchable
    words returns nothing. With semantic ranking on, full-text and embedding candidates
    are fused (reciprocal-rank fusion) and the score is the fused score.

    The full-text query is the question's words chosen by their rarity in the
    knowledge base (`passage_terms`), all of a long question's useful words rather than
    its digits. A query that is a document's title (near enough: same words) puts that
    document's best passage first."""
    if not query_words(query or "") or limit <= 0:
        return []
    terms = passage_terms(query)
    semantic = embedder() is not None
    wanted = max(limit, CANDIDATES) if semantic else limit
    engine = full_text()
    ranked = engine.search_passages(terms, wanted) if engine else _keyword_fallback(terms, wanted)
    if semantic:
        ranked = fuse([ranked, semantic_search(query, CANDIDATES)], wanted, weights=FUSION_WEIGHTS)
    ranked = _title_first(query, ranked)[:limit]
    passages = Passage.objects.filter(
        pk__in=[pk for pk, _ in ranked], document__is_active=True
    ).in_bulk()
    return [
        SearchResult(p.document_id, p.title, p.pk, p.heading, p.text, score)
        for pk, score in ranked
        if (p := passages.get(pk)) is not None
    ]


def _title_first(query: str, ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """`ranked` with the best passage of the document titled like `query` first (its
    first passage when none was ranked), scored as the best."""
    document_id = title_match(query)
    if document_id is None:
        return ranked
    ids = [pk for pk, _ in ranked]
    owners = dict(Passage.objects.filter(pk__in=ids, document_id=document_id).values_list("pk", "document_id"))
    best = next((pk for pk in ids if pk in owners), None)
    if best is None:
        best = (
            Passage.objects.filter(document_id=document_id).order_by("position").values_list("pk", flat=True).first()
        )
        if best is None:
            return ranked
    top = max((score for _, score in ranked), default=1.0)
    return [(best, top)] + [(pk, score) for pk, score in ranked if pk != best]


def _keyword_fallback(terms: list[str], limit: int) -> list[tuple[int, float]]:
    """For a database without a full-text engine: passages containing the most terms."""
    condition = Q()
    for term in terms:
        condition |= Q(text__icontains=term) | Q(title__icontains=term) | Q(heading__icontains=term)
    rows = Passage.objects.filter(condition, document__is_active=True).values_list(
        "pk", "title", "heading", "text"
    )[:500]
    scored = []
    for pk, title, heading, text in rows:
        haystack = f"{title} {heading} {text}".lower()
        hits = sum(1 for term in terms if term in haystack)
        scored.append((pk, float(hits)))
    scored.sort(key=lambda pair: -pair[1])
    return scored[:limit]


def public_documents() -> list[Document]:
    """The published help articles (public and active), by title."""
    return list(Document.objects.filter(is_public=True, is_active=True).only("id", "title", "updated_at"))


def public_document(document_id: int) -> Document | None:
    """A published help article with its passages, or None (missing, internal or
    inactive look the same)."""
    return (
        Document.objects.filter(pk=document_id, is_public=True, is_active=True)
        .prefetch_related("passages")
        .first()
    )


def public_titles(document_ids: list[Any]) -> dict[int, str]:
    """{id: title} of the published ones among `document_ids` (one query)."""
    ids = [i for i in document_ids if isinstance(i, int)]
    if not ids:
        return {}
    return dict(
        Document.objects.filter(pk__in=ids, is_public=True, is_active=True).values_list("pk", "title")
    )
