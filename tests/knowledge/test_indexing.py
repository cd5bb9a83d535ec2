"""The full-text index follows every create, edit and delete of documents and
conversation items, on whichever database the suite runs (SQLite by default;
PostgreSQL with DATABASE_URL=postgres://...)."""

from __future__ import annotations

import io

import pytest
from django.db import connection

from conversations.knowledge.models import Document, Passage
from conversations.knowledge.retriever import FullTextRetriever
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import document_create, document_delete, document_save
from conversations.models import Conversation, Message
from conversations.retrieval import default_retriever
from tests.knowledge.helpers import append, exchange, new_conversation

pytestmark = pytest.mark.django_db


def _titles(query: str) -> list[str]:
    return [hit.title for hit in knowledge_search(query=query)]


def _retrieve(conversation: Conversation, query: str) -> list[int]:
    return [
        pk
        for pk, _ in default_retriever().retrieve(
            conversation_id=conversation.pk, query=query, before_seq=10**9, limit=50
        )
    ]


def test_the_full_text_retriever_is_installed():
    assert isinstance(default_retriever(), FullTextRetriever)


def test_a_saved_document_is_searchable_at_once():
    document = document_create(
        title="Warranty", body="# Warranty\n\nEvery grinder carries a two-year warranty."
    )
    document_create(title="Kettles", body="Kettles boil water quickly.")
    document_create(title="Mugs", body="Mugs keep coffee warm.")

    hits = knowledge_search(query="grinder warranty")

    assert [hit.document_id for hit in hits] == [document.pk]
    assert hits[0].passage_id == Passage.objects.get(document=document).pk
    assert hits[0].score > 0


def test_an_edit_reindexes_the_document():
    document = document_create(title="Warranty", body="Every grinder carries a two-year warranty.")
    old_passage = Passage.objects.get(document=document).pk

    document.title = "Guarantee"
    document.body = "Kettles are guaranteed for five years."
    document_save(document=document)

    assert _titles("grinder") == []
    assert _titles("kettles guaranteed") == ["Guarantee"]
    assert not Passage.objects.filter(pk=old_passage).exists()


def test_an_inactive_document_is_not_searched_until_reactivated():
    document = document_create(title="Warranty", body="Every grinder carries a two-year warranty.")

    document.is_active = False
    document_save(document=document)
    assert _titles("grinder") == []

    document.is_active = True
    document_save(document=document)
    assert _titles("grinder") == ["Warranty"]


def test_a_deleted_document_leaves_nothing_in_the_index():
    document = document_create(title="Warranty", body="Every grinder carries a two-year warranty.")
    document_create(title="Kettles", body="Kettles boil water quickly.")

    document_delete(document=document)

    assert _titles("grinder warranty") == []
    assert _titles("kettles") == ["Kettles"]
    assert not Document.objects.filter(title="Warranty").exists()


def test_a_bulk_delete_outside_the_services_also_leaves_the_index():
    document_create(title="Warranty", body="Every grinder carries a two-year warranty.")

    Document.objects.all().delete()

    assert _titles("grinder") == []


def test_stored_items_are_indexed_in_the_same_transaction():
    conversation = new_conversation()
    user, answer = append(conversation, exchange("My parcel went to Zanzibar", "Sorry to hear that!"))

    assert _retrieve(conversation, "zanzibar") == [user.pk]


def test_retrieval_stays_within_one_conversation():
    mine, theirs = new_conversation(), new_conversation()
    append(mine, exchange("My voucher code is KAPPA77", "Noted."))
    append(theirs, exchange("My voucher code is KAPPA77 too", "Noted."))

    found = _retrieve(mine, "voucher KAPPA77")

    assert found and set(found) <= set(Message.objects.filter(conversation=mine).values_list("pk", flat=True))


def test_an_edited_item_is_reindexed():
    conversation = new_conversation()
    user, _ = append(conversation, exchange("Please ship to Lisbon", "Will do."))

    Message.objects.filter(pk=user.pk).update(text="Please ship to Porto")

    assert _retrieve(conversation, "lisbon") == []
    assert _retrieve(conversation, "porto") == [user.pk]


def test_deleted_items_leave_the_index():
    conversation = new_conversation()
    append(conversation, exchange("Please ship to Lisbon", "Will do."))

    Conversation.objects.filter(pk=conversation.pk).delete()

    assert _retrieve(conversation, "lisbon") == []


def test_notes_are_never_indexed():
    conversation = new_conversation()
    append(conversation, [{"kind": "note", "text": "Customer sounded upset about Lisbon"}])

    assert _retrieve(conversation, "lisbon") == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="inspects the SQLite FTS5 tables")
def test_sqlite_index_rows_match_the_source_rows():
    document = document_create(title="Warranty", body="# A\n\nOne.\n\n# B\n\nTwo.")
    conversation = new_conversation()
    append(conversation, exchange("hello there", "hi"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knowledge_passage_fts")
        assert cursor.fetchone()[0] == document.passages.count() == 2
        cursor.execute("SELECT count(*) FROM knowledge_message_fts")
        assert cursor.fetchone()[0] == 2

        document_delete(document=document)
        Conversation.objects.all().delete()

        cursor.execute("SELECT count(*) FROM knowledge_passage_fts")
        assert cursor.fetchone()[0] == 0
        cursor.execute("SELECT count(*) FROM knowledge_message_fts")
        assert cursor.fetchone()[0] == 0


def test_reindex_rebuilds_what_was_written_around_the_services():
    from django.core.management import call_command

    conversation = new_conversation()
    Message.objects.create(conversation=conversation, seq=1, kind="user", text="Imported note about Oslo")
    document_create(title="Warranty", body="Every grinder carries a two-year warranty.")
    assert _retrieve(conversation, "oslo") == []  # written around items_append: not indexed

    call_command("knowledge_reindex", stdout=io.StringIO())

    assert len(_retrieve(conversation, "oslo")) == 1
    assert _titles("grinder") == ["Warranty"]
