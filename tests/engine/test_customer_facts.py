"""Customer facts through the real engine and the fake provider: an order looked up
early and a refund promised early are still in the request long after the history
budget dropped them, each a developer item recorded with reason "fact"; a fact staff
edit in the console is what the next turn sends; a read-only viewer cannot edit; the
request never exceeds the budget with facts in it."""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations.agent.history import select_history
from conversations.agent.tokens import encoding_name_for_model, get_encoding, sent_item_tokens
from conversations.errors import PermissionDenied
from conversations.models import CustomerFact, Message, StaffAction
from conversations.permissions import support_groups_sync
from conversations.services.facts import fact_add, fact_delete, fact_edit
from conversations.services.items import items_append
from conversations.services.messages import note_add
from tests.console.conftest import act_url, conversation_url, logged_in, make_staff
from tests.engine.support import answered, ask
from tests.fake_provider import calls, text
from tests.knowledge.helpers import filler

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def groups(db):
    support_groups_sync()  # transactional tests flush the groups the migration made

ADA_1001 = {"order_number": "1001", "email": "ada@example.com"}
PROMISE = "I've approved a refund of $40 to your card; it should land within five working days."


def _facts_sent(request: dict) -> list[str]:
    return [i["content"] for i in request["input"] if i.get("role") == "developer"
            and str(i.get("content", "")).startswith("Customer fact")]


def _small_budget(agent, budget: int = 800) -> None:
    agent.history_token_budget = budget
    agent.save(update_fields=["history_token_budget"])


def _pad(conversation, exchanges: int = 80) -> None:
    with transaction.atomic():
        items_append(conversation=conversation, items=filler(exchanges))


def test_an_order_looked_up_early_is_sent_long_after_the_history_dropped_it(conversation, agent, provider):
    _small_budget(agent)
    provider.queue(calls(("lookup_order", ADA_1001)), text("Order 1001 has shipped."))
    answered(ask(conversation, "Where is order 1001? My email is ada@example.com."))
    (fact,) = CustomerFact.objects.filter(conversation=conversation)
    assert fact.source == "tool" and "order number 1001" in fact.text and "status shipped" in fact.text
    _pad(conversation, 120)

    provider.queue(text("It is with the carrier."))
    turn = answered(ask(conversation, "Remind me, who is bringing it?"))

    request = provider.requests_for(conversation.pk)[-1]
    assert _facts_sent(request) == [f"Customer fact: {fact.text}"]
    assert request["input"][0]["content"] == f"Customer fact: {fact.text}"  # first, before the history
    entry = next(e for e in turn.history if e["reason"] == "fact")
    assert entry["fact_id"] == fact.pk and entry["message_id"] is None and entry["tokens"] > 0
    assert turn.history_tokens <= turn.history_budget == 800


def test_a_promise_is_kept_and_a_fact_staff_edit_is_what_the_next_turn_sends(
    conversation, agent, provider, groups
):
    _small_budget(agent)
    provider.queue(text(PROMISE))
    answered(ask(conversation, "The kettle arrived broken, what can you do?"))
    (promise,) = CustomerFact.objects.filter(conversation=conversation, source="promise")
    assert promise.text == f"Assistant promised: {PROMISE}"
    _pad(conversation, 120)
    provider.queue(text("Let me check that for you."))
    answered(ask(conversation, "Is that still happening?"))
    assert _facts_sent(provider.requests_for(conversation.pk)[-1]) == [f"Customer fact: {promise.text}"]

    # Staff correct it in the console.
    client = logged_in(make_staff("sam", group="Support agent"))
    page = client.get(conversation_url(conversation)).content.decode()
    assert "Customer facts" in page and "refund of $40" in page
    edited = "Refund of $45 approved on 3 May (the $40 plus return postage)."
    response = client.post(act_url(conversation, "fact-edit"), {"fact": promise.pk, "text": edited})
    assert response.status_code == 302
    provider.queue(text("Yes: $45."))
    answered(ask(conversation, "How much was it again?"))

    assert _facts_sent(provider.requests_for(conversation.pk)[-1]) == [f"Customer fact: {edited}"]
    assert StaffAction.objects.filter(conversation=conversation, action="fact_edit").exists()


def test_a_viewer_sees_facts_but_cannot_add_edit_or_delete_them(conversation, provider, groups):
    fact = fact_add(conversation=conversation, actor=None, text="Prefers email, never phone.")
    viewer = make_staff("vera", group="Support viewer")
    client = logged_in(viewer)

    page = client.get(conversation_url(conversation)).content.decode()
    assert "Prefers email, never phone." in page and "Add a fact" not in page and "fact-edit" not in page
    for action, data in (("fact-add", {"text": "Owns a dog"}), ("fact-edit", {"fact": fact.pk, "text": "x"}),
                         ("fact-delete", {"fact": fact.pk})):
        assert client.post(act_url(conversation, action), data).status_code == 403
    assert client.post(act_url(conversation, "note"), {"text": "keep", "as_fact": "1"}).status_code == 403
    for attempt in (lambda: fact_add(conversation=conversation, actor=viewer, text="x"),
                    lambda: fact_edit(fact=fact, actor=viewer, text="x"),
                    lambda: fact_delete(fact=fact, actor=viewer)):
        with pytest.raises(PermissionDenied):
            attempt()
    fact.refresh_from_db()
    assert fact.text == "Prefers email, never phone."
    assert list(CustomerFact.objects.filter(conversation=conversation)) == [fact]
    assert not Message.objects.filter(conversation=conversation, kind="note").exists()


def test_staff_add_delete_and_keep_a_note_as_a_fact(conversation, agent, provider, groups):
    staff = make_staff("sam", group="Support agent")
    client = logged_in(staff)
    client.post(act_url(conversation, "fact-add"), {"text": "Ships to 12 Rue Oberkampf, Paris."})
    client.post(act_url(conversation, "note"), {"text": "Customer is a reseller; VAT number FR123.",
                                                 "as_fact": "1"})
    gone = fact_add(conversation=conversation, actor=staff, text="Wrong fact.")
    assert client.post(act_url(conversation, "fact-delete"), {"fact": gone.pk}).status_code == 302
    assert client.post(act_url(conversation, "fact-add"), {"text": "   "}).status_code == 302  # shown, not kept

    provider.queue(text("Noted."))
    answered(ask(conversation, "Hello again"))

    assert _facts_sent(provider.requests_for(conversation.pk)[-1]) == [
        "Customer fact (from staff): Ships to 12 Rue Oberkampf, Paris.",
        "Customer fact (from staff): Customer is a reseller; VAT number FR123.",
    ]
    note = Message.objects.get(conversation=conversation, kind="note")
    assert CustomerFact.objects.get(source="note").message == note


@pytest.mark.parametrize("budget", [60, 200, 800])
def test_the_budget_is_never_exceeded_with_facts(conversation, budget):
    for n in range(30):
        fact_add(conversation=conversation, actor=None,
                 text=f"Fact {n}: the customer's espresso grinder, order QX-{n:05d}, was replaced under warranty.")
    note_add(conversation=conversation, actor=None, text="A long staff note kept as a fact. " * 8, as_fact=True)
    _pad(conversation, 40)
    with transaction.atomic():
        (current,) = items_append(conversation=conversation, items=[{"kind": "user", "text": "And the grinder?"}])

    selection = select_history(conversation_id=conversation.pk, current=current, budget=budget)

    facts = [e for e in selection.explanation if e["reason"] == "fact"]
    encoding = get_encoding(encoding_name_for_model(conversation.agent.model))  # the request's own tokenizer
    sent = sum(sent_item_tokens(item, encoding) for item in selection.input_items)
    assert sent <= selection.tokens <= budget
    assert sum(e["tokens"] for e in facts) <= budget * 0.2
    assert selection.explanation[-1]["reason"] == "current"
    if budget >= 200:
        assert facts and selection.explanation[0]["reason"] == "fact"
        ids = [e["fact_id"] for e in facts]
        assert ids == sorted(ids)  # sent oldest first ...
        newest = CustomerFact.objects.filter(text__startswith="Fact 29").get().pk
        assert newest in ids  # ... chosen newest first
