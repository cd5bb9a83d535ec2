"""Many conversations at once on SQLite: posts from several threads and turns on the
engine's database threads all commit (writers queue on the busy timeout instead of
failing with "database is locked"), every turn is answered, seqs stay gap-free."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections

from conversations.models import Message, Turn
from conversations.services.conversations import conversation_create
from tests.engine.support import ask, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_posts_and_turns_across_conversations(agent, provider):
    conversations = [conversation_create(agent=agent) for _ in range(10)]

    def customer(conversation) -> None:
        try:
            for n in range(3):
                ask(conversation, f"Message {n}", client_id=f"m{n}")
                ask(conversation, f"Message {n}", client_id=f"m{n}")  # a client's retry
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=5) as pool:
        list(pool.map(customer, conversations))

    wait_until(lambda: not Turn.objects.exclude(status__in=["completed", "failed"]).exists(), timeout=60)
    assert Turn.objects.count() == 30
    assert set(Turn.objects.values_list("status", flat=True)) == {"completed"}
    for conversation in conversations:
        seqs = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("seq", "kind"))
        assert [seq for seq, _ in seqs] == list(range(1, 7))
        assert sorted(kind for _, kind in seqs) == ["assistant"] * 3 + ["user"] * 3
        conversation.refresh_from_db()
        assert conversation.next_seq == 7 and conversation.message_count == 6 and conversation.turn_count == 3
