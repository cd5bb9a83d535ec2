"""`items_bulk_append`, the importer's lean insert, stores what `items_append` stores:
the same rows and seqs, token counts, retrieval index entries, conversation counters and
customer facts, on whichever database the suite runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from conversations.agent.history import default_retriever
from conversations.knowledge.search import MAX_INDEXED_CHARS, full_text
from conversations.models import Agent, Conversation, CustomerFact, Message
from conversations.services.items import conversation_lock, items_append, items_bulk_append

pytestmark = pytest.mark.django_db

_WHEN = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
_COLUMNS = ("seq", "kind", "text", "tool_name", "call_id", "tool_arguments", "token_count", "client_id",
            "turn_id", "author_id", "external_id", "metadata", "created_at")


def _items() -> list[dict[str, Any]]:
    return [
        {"kind": "user", "text": "Where is my parcel?", "external_id": "m1", "created_at": _WHEN},
        {"kind": "function_call", "tool_name": "lookup_order", "call_id": "c1",
         "tool_arguments": '{"order": "1001"}', "external_id": "m2", "created_at": _WHEN + timedelta(seconds=1)},
        {"kind": "function_output", "text": '{"status": "shipped"}', "call_id": "c1", "external_id": "m3",
         "metadata": {"origin": {"line": 3}}, "created_at": _WHEN + timedelta(seconds=2)},
        {"kind": "assistant", "text": "Your parcel ships today. \u00e9\u00e8 \U0001f4e6", "external_id": "m4",
         "created_at": _WHEN + timedelta(hours=1)},
        {"kind": "note", "text": "Imported", "token_count": 99},  # given count and no date: kept, now
    ]


def _stored(conversation: Conversation) -> list[tuple[Any, ...]]:
    return [
        row[:-1] + ((row[-1] - _WHEN).total_seconds() if row[-1] <= _WHEN + timedelta(days=1) else "now",)
        for row in Message.objects.filter(conversation=conversation).order_by("seq").values_list(*_COLUMNS)
    ]


def _counters(conversation: Conversation) -> tuple[Any, ...]:
    conversation.refresh_from_db()
    return conversation.next_seq, conversation.message_count, conversation.last_message_preview


def _found(conversation: Conversation, query: str) -> list[int]:
    hits = default_retriever().retrieve(conversation_id=conversation.pk, query=query, before_seq=10**9, limit=10)
    seqs = dict(Message.objects.filter(conversation=conversation).values_list("pk", "seq"))
    return sorted(seqs[pk] for pk, _ in hits)


@pytest.mark.parametrize("save", [True, False])
def test_bulk_append_stores_what_items_append_stores(save: bool):
    agent = Agent.objects.create(name="Bulk", model="gpt-4o-mini")
    one, two = (Conversation.objects.create(agent=agent, customer_id=name) for name in ("one", "two"))
    for conversation, append in ((one, items_append), (two, items_bulk_append)):
        for batch in (_items()[:2], _items()[2:]):  # twice: seqs continue from next_seq
            with transaction.atomic():
                row = conversation_lock(conversation.pk)
                kwargs = {"locked": True} if append is items_append else {}
                stored = append(conversation=row, items=batch, save=save, **kwargs)
                if not save:
                    row.save(update_fields=["next_seq", "message_count", "last_message_at",
                                            "last_message_preview", "updated_at"])
            assert all(m.pk and m.conversation is row for m in stored)
            assert [m.seq for m in stored] == [m.seq for m in Message.objects.filter(pk__in=[m.pk for m in stored])]
    assert _stored(two) == _stored(one)
    assert [row[0] for row in _stored(two)] == [1, 2, 3, 4, 5]
    assert _counters(two) == _counters(one) == (6, 5, "Your parcel ships today. \u00e9\u00e8 \U0001f4e6")
    for conversation in (one, two):
        assert conversation.last_message_at == max(conversation.messages.values_list("created_at", flat=True))
    assert _found(two, "parcel") == _found(one, "parcel") == [1, 4]
    assert _found(two, "shipped order") == _found(one, "shipped order")


def test_an_imported_history_keeps_the_customer_facts_a_live_one_keeps():
    # An Assistants thread imported with its order lookup, a promise and what the
    # customer tried: the customer who comes back must find them in every turn.
    items = [
        {"kind": "user", "text": "I already restarted the grinder twice. Order 1001 still jams."},
        {"kind": "function_call", "tool_name": "lookup_order", "call_id": "c1", "tool_arguments": '{"order_id": "1001"}'},
        {"kind": "function_output", "tool_name": "lookup_order", "call_id": "c1",
         "text": '{"order_id": "1001", "status": "delivered", "items": ["Espresso grinder"]}'},
        {"kind": "assistant", "text": "Sorry about that. I've approved a replacement grinder; it ships on Monday."},
    ]
    agent = Agent.objects.create(name="Bulk", model="gpt-4o-mini")
    live, imported = (Conversation.objects.create(agent=agent, customer_id=name) for name in ("live", "imported"))
    for conversation, append in ((live, items_append), (imported, items_bulk_append)):
        with transaction.atomic():
            append(conversation=conversation_lock(conversation.pk), items=items)

    def facts(conversation: Conversation) -> list[tuple[Any, ...]]:
        return sorted(CustomerFact.objects.filter(conversation=conversation).values_list("source", "text", "message__seq"))

    assert facts(imported) == facts(live)
    assert [source for source, _, _ in facts(imported)] == ["promise", "tool", "tried"]


def test_bulk_append_refuses_unknown_fields():
    conversation = Conversation.objects.create(agent=Agent.objects.create(name="Bulk"), customer_id="x")
    with transaction.atomic(), pytest.raises(TypeError):
        items_bulk_append(conversation=conversation_lock(conversation.pk), items=[{"kind": "user", "txt": "hi"}])


def _index_rows() -> list[tuple[Any, ...]]:
    """The retrieval index's message entries as the engine stores them."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT message_id, conversation_id::text, seq, vector::text "
                           "FROM knowledge_messageindexentry ORDER BY message_id")
        else:
            cursor.execute("SELECT rowid, body, conv, seq FROM knowledge_message_fts ORDER BY rowid")
        return cursor.fetchall()


def test_the_index_a_bulk_append_writes_is_the_one_a_rebuild_makes():
    conversation = Conversation.objects.create(agent=Agent.objects.create(name="Bulk"), customer_id="x")
    long_text = "parcel " * (MAX_INDEXED_CHARS // 7) + "beyondthelimit"
    with transaction.atomic():
        items_bulk_append(conversation=conversation_lock(conversation.pk), items=[
            *_items(),  # with a tool call's arguments and an internal note (not indexed)
            {"kind": "assistant", "text": long_text, "tool_arguments": "ignored"},
        ])
    written = _index_rows()
    assert len(written) == 5 and written[-1][0] == Message.objects.get(seq=6).pk
    assert "1001" in str(written[1])  # the call's arguments are searchable
    with transaction.atomic():
        full_text().rebuild()
    assert _index_rows() == written
    assert _found(conversation, "beyondthelimit") == []  # cut at MAX_INDEXED_CHARS
