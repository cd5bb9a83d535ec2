"""Semantic history through the provider's embeddings endpoint when that endpoint hangs
(`SUPPORT_HISTORY_EMBEDDINGS=provider`): every turn's selection embeds the customer's new
message as its query, on one of the engine's database threads. More conversations
than there are database threads ask at once while the endpoint answers nothing; every
one of them is answered, through the real SDK and the fake provider, with history from
full text, and only the first selection waited for the endpoint at all."""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations.knowledge import history_semantic
from conversations.knowledge.models import MessageEmbedding
from conversations.services.conversations import conversation_create
from conversations.services.items import items_append
from tests.engine.support import answered, ask
from tests.knowledge.helpers import exchange, filler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider_embeddings(provider, settings):
    settings.SUPPORT_PLATFORM = {
        **settings.SUPPORT_PLATFORM, "HISTORY_EMBEDDINGS": "provider", "HISTORY_EMBED_BACKGROUND": False,
        "EMBEDDINGS_MODEL": "toy-embedding",
        # Long enough that a selection waiting on the stuck endpoint as before (60 s x 3
        # in production) could not be answered within the test's wait.
        "PROVIDER_TIMEOUT_SECONDS": 30.0, "EMBEDDINGS_QUERY_TIMEOUT_SECONDS": 0.5,
    }
    history_semantic.clear_caches()
    yield provider
    provider.embeddings_released.set()
    history_semantic.clear_caches()


def test_more_conversations_than_database_threads_are_answered_while_the_endpoint_hangs(
    agent, provider_embeddings, settings
):
    provider = provider_embeddings
    # Given long conversations (retrieval runs: the history is over the budget) whose
    # items the endpoint embedded while it worked
    agent.history_token_budget = 400
    agent.save(update_fields=["history_token_budget"])
    count = settings.SUPPORT_PLATFORM["DB_THREADS"] + 2
    conversations = [conversation_create(agent=agent, channel="api") for _ in range(count)]
    for conversation in conversations:
        with transaction.atomic():
            items_append(conversation=conversation, items=exchange("My kettle cracked.", "Sorry to hear that."))
            items_append(conversation=conversation, items=filler(100))
        history_semantic.embed_pending(conversation.pk)
    assert MessageEmbedding.objects.filter(model="provider:toy-embedding").count() == count * 202
    embedded_before = len(provider.embeddings_requests)

    # When the endpoint stops answering and every customer asks at once
    provider.embeddings_stuck.set()
    posted = [ask(conversation, "Has anything happened about it?") for conversation in conversations]

    # Then every one is answered, while the endpoint still holds its first request
    turns = [answered(p, timeout=20) for p in posted]
    assert [t.status for t in turns] == ["completed"] * count, [t.error_message for t in turns]
    assert len(provider.embeddings_requests) == embedded_before + 1
    assert len(provider.requests) == count  # one Responses request per turn
    for turn in turns:
        assert turn.requests[0]["input"]  # history went out, selected by full text
