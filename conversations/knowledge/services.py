"""Writing the knowledge base: every create, edit and delete of a document goes through
here (the admin's save_model and delete actions call these), and each one leaves the
passages and the full-text index matching the document, in one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.errors import InvalidInput
from conversations.knowledge.models import Document, Passage, SourceFormat
from conversations.knowledge.search import full_text
from conversations.knowledge.semantic import embed_texts, embedder, passage_text
from conversations.knowledge.text import PassageText, extract, split_passages


def _read_upload(upload: Any) -> tuple[str, bytes]:
    """(name, bytes) from a Django UploadedFile or a (name, bytes) pair."""
    if isinstance(upload, tuple):
        return upload
    upload.seek(0)
    return upload.name, upload.read()


def document_save(*, document: Document, upload: Any = None) -> Document:
    """Store a new or edited document and rebuild its passages and index entries.

    `upload` (a file or a `(name, bytes)` pair) replaces the body with the file's text; a
    blank title then takes the file's title. Raises InvalidInput for an unsupported or
    empty file, a blank title or a blank body, before anything is written.
    """
    if upload is not None:
        name, data = _read_upload(upload)
        extracted = extract(name, data)
        document.body = extracted.text
        document.source_format = extracted.source_format
        document.source_name = name[:255]
        if not (document.title or "").strip():
            document.title = extracted.title
    elif not document.source_format:
        document.source_format = SourceFormat.PASTE
    document.title = (document.title or "").strip()[:200]
    if not document.title:
        raise InvalidInput("A document needs a title.", fields={"title": "may not be blank"})
    if not (document.body or "").strip():
        raise InvalidInput(
            "A document needs text: paste it or upload a file.", fields={"body": "may not be blank"}
        )
    # Splitting and (optional) embedding happen before the transaction: an embeddings
    # call to the provider must not hold the database's write lock.
    pieces = split_passages(document.body)
    vectors = embed_texts([passage_text(document.title, p.heading, p.text) for p in pieces])
    with transaction.atomic():
        document.save()
        _reindex(document, pieces, vectors)
    return document


def document_create(
    *, title: str = "", body: str = "", upload: Any = None, is_active: bool = True,
    is_public: bool = False,
) -> Document:
    return document_save(
        document=Document(title=title, body=body, is_active=is_active, is_public=is_public),
        upload=upload,
    )


def document_delete(*, document: Document) -> None:
    """Delete the document, its passages and their index entries."""
    with transaction.atomic():
        # Passage rows cascade; the engine's delete triggers (SQLite) or the expression
        # indexes (PostgreSQL) drop their index entries with them.
        document.delete()


def _reindex(document: Document, pieces: list[PassageText], vectors: list[bytes | None]) -> None:
    """Replace the document's passages. Precondition: inside a transaction."""
    Passage.objects.filter(document=document).delete()
    passages = Passage.objects.bulk_create(
        Passage(
            document=document,
            position=position,
            title=document.title,
            heading=piece.heading[:300],
            text=piece.text,
            token_count=piece.tokens,
            embedding=vector,
        )
        for position, (piece, vector) in enumerate(zip(pieces, vectors, strict=True))
    )
    engine = full_text()
    if engine is not None and document.is_active:
        engine.index_passages(passages)
    document.passage_count = len(passages)
    document.indexed_at = timezone.now()
    document.save(update_fields=["passage_count", "indexed_at"])


def knowledge_reindex() -> int:
    """Rebuild the full-text indexes of passages and conversation items from the tables
    (after a restore or a bulk import that bypassed the services), and, with semantic
    ranking on, re-embed every passage (after switching embedders). Returns the number
    of passages of active documents."""
    engine = full_text()
    with transaction.atomic():
        if engine is not None:
            engine.rebuild()
    if embedder() is not None:
        passages = list(Passage.objects.only("id", "title", "heading", "text"))
        vectors = embed_texts([passage_text(p.title, p.heading, p.text) for p in passages])
        for passage, vector in zip(passages, vectors, strict=True):
            passage.embedding = vector
        Passage.objects.bulk_update(passages, ["embedding"], batch_size=500)
    # Tells every process's caches (term statistics, titles, vectors) that the index changed.
    Document.objects.update(indexed_at=timezone.now())
    return Passage.objects.filter(document__is_active=True).count()
