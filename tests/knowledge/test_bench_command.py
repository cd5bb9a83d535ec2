"""`bench_retrieval` runs end to end on tiny sizes, prints its tables, and rolls back
everything it wrote (timings are reported, never asserted)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from conversations.knowledge.models import Document
from conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db(transaction=True)


def test_bench_prints_its_tables_and_leaves_the_database_as_it_was():
    out = io.StringIO()

    call_command(
        "bench_retrieval", "--conversations=1", "--exchanges=40", "--budget=300", "--sweep=200",
        "--passages=40", "--repeat=1", "--sizes=100", stdout=out,
    )

    text = out.getvalue()
    for heading in ("full history", "last-N (same budget)", "selector (full-text)", "Budget sweep",
                    "Selection time", "Knowledge-base search over 40 passages",
                    "full-text + offline semantic"):
        assert heading in text
    assert not Conversation.objects.exists() and not Message.objects.exists()
    assert not Document.objects.exists()


def test_the_knowledge_search_bench_prints_every_ranker_and_leaves_the_database_as_it_was():
    out = io.StringIO()

    call_command("bench_knowledge_search", "--per-kind=2", "--no-semantic", stdout=out)

    text = out.getvalue()
    assert "held-out split: 6 questions (2 short, 2 long, 2 title)" in text
    for row in ("full-text before", "full-text after", "BM25 (k1 1.2, b 0.75)", "title R@1"):
        assert row in text
    assert not Document.objects.exists()
