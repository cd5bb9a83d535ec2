"""Synthetic data and measurements for `manage.py bench_retrieval`.

Conversations: long support chats in which three facts are planted early (an order
number, a delivery-address change, a contact preference) among varied filler that
shares their vocabulary (other talk of orders, addresses, delivery, contact), then
asked about at the end. Each question is answered from three contexts at the same
budget: the full history, the last N messages that fit, and the history selector.
"""

from __future__ import annotations

import functools
import json
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from conversations.agent.history import ITEM_OVERHEAD_TOKENS, select_history
from conversations.knowledge.services import document_create
from conversations.models import Agent, Conversation, Message
from conversations.retrieval import MODEL_KINDS, Retriever
from conversations.services.items import items_append

MODEL = "gpt-4.1-mini"
STREETS = ["Rue Oberkampf", "Calle de Alcalá", "Via Tornabuoni", "Kastanienallee", "Nørrebrogade", "Prinsengracht"]
CITIES = ["Paris", "Madrid", "Florence", "Berlin", "Copenhagen", "Amsterdam"]
CHANNELS = [("WhatsApp", "phone calls"), ("email", "text messages"), ("Signal", "email"), ("letter", "phone calls")]
FILLER = [
    ("Can I add a gift note to my order?", "Yes, add it at checkout or tell me the text and I'll attach it."),
    ("Does the delivery address matter for customs?", "Only outside the EU: duties are charged to the delivery country."),
    ("What's the best way to contact you on weekends?", "This chat is open around the clock; the team answers on Monday."),
    ("Is the espresso grinder loud?", "It runs at about 70 decibels, quieter than most blade grinders."),
    ("Which colours does the travel mug come in?", "Black, white and sage green."),
    ("How do I descale the kettle?", "Boil equal parts water and white vinegar, then rinse twice."),
    ("Do you ship to Norway?", "Yes, Norway is in our delivery area; duties are paid on delivery."),
    ("Can I change the size after ordering?", "Until it ships, yes: tell me what you'd like instead."),
    ("My last parcel came in a huge box, can you use less packaging?", "Noted; we're moving to smaller boxes this spring."),
    ("Is there a student discount?", "Students get 10% with a verified student email."),
    ("How long is the warranty on the grinder?", "Two years from delivery, covering motor and burrs."),
    ("Can I pick up an order in person?", "Not yet; every order ships from our warehouse."),
    ("Do you have the pour-over kettle in stock?", "Yes, it ships within a day."),
    ("Which filter papers fit the ceramic dripper?", "Size 02 cone papers."),
    ("Can someone call me about a bulk order?", "I'll pass it on; the sales team contacts bulk buyers within two days."),
    ("Where do I find my invoices?", "Under Orders in your account, as PDFs."),
    ("Is the milk frother dishwasher safe?", "The jug is; the base is not."),
    ("Can I pay in instalments?", "Yes, with PayPal Pay in 3 for orders over 30 euros."),
    ("What beans do you recommend for espresso?", "Our Dark Forest blend: chocolatey and low acidity."),
    ("My neighbour can accept parcels, is that fine?", "Yes, the carrier leaves a note saying where it is."),
    ("Do you deliver on Saturdays?", "Express parcels can arrive on Saturday in most cities."),
    ("How do I update my phone number?", "Under Account settings, Contact details."),
    ("Do you sell replacement burrs?", "Yes, in the spare-parts section for each grinder model."),
    ("Can I return an opened bag of coffee?", "Opened food can't be returned unless it is faulty."),
]
QUESTIONS = {
    "order number": "Sorry, can you remind me which order number I gave you at the very start?",
    "address change": "Which street did I ask you to change the delivery address to?",
    "contact preference": "How did I say I prefer to be contacted?",
}


@dataclass
class Planted:
    conversation: Conversation
    facts: dict[str, int]  # fact name -> id of the message that states it


def _agent() -> Agent:
    agent = Agent.objects.filter(is_default=True).first()
    return agent or Agent.objects.create(name="Benchmark agent", model=MODEL, is_default=True)


def _append(conversation: Conversation, items: list[dict[str, Any]]) -> list[Message]:
    return items_append(conversation=conversation, items=items, model=MODEL)


def planted_conversation(exchanges: int, rng: random.Random) -> Planted:
    """A conversation of `exchanges` user/assistant exchanges (plus an occasional order
    lookup), with the three facts planted within the first 15 exchanges."""
    conversation = Conversation.objects.create(agent=_agent(), channel="api")
    order = f"NW-{rng.randrange(10000, 99999)}"
    street, city = rng.choice(list(zip(STREETS, CITIES, strict=True)))
    channel, other = rng.choice(CHANNELS)
    planted = {
        2: (f"My order number is {order}, it's a grinder and two mugs.", f"Thanks, I have order {order} open."),
        7: (f"Please change the delivery address to {rng.randrange(2, 90)} {street}, {city}.",
            "Done, the delivery address is updated for the parcel."),
        13: (f"By the way, I prefer {channel}, please don't contact me by {other}.",
             f"Noted, we'll use {channel} if we need to reach you."),
    }
    items: list[dict[str, Any]] = []
    for n in range(exchanges):
        if n in planted:
            user, answer = planted[n]
        else:
            user, answer = FILLER[rng.randrange(len(FILLER))]
        items += [{"kind": "user", "text": user}, {"kind": "assistant", "text": answer}]
        if n % 25 == 24:
            call_id = f"call_{n}"
            items += [
                {"kind": "function_call", "call_id": call_id, "tool_name": "check_stock",
                 "tool_arguments": json.dumps({"product": "pour-over kettle"})},
                {"kind": "function_output", "call_id": call_id, "tool_name": "check_stock",
                 "text": json.dumps({"product": "pour-over kettle", "in_stock": True, "ships_in_days": 1})},
            ]
        if len(items) >= 400:
            _append(conversation, items)
            items = []
    if items:
        _append(conversation, items)
    statements = dict(zip(QUESTIONS, (planted[2][0], planted[7][0], planted[13][0]), strict=True))
    ids = dict(
        Message.objects.filter(conversation=conversation, text__in=statements.values()).values_list("text", "pk")
    )
    return Planted(conversation, {name: ids[text] for name, text in statements.items()})


def ask(conversation: Conversation, question: str) -> Message:
    return _append(conversation, [{"kind": "user", "text": question}])[0]


def analyze() -> None:
    """Refresh the planner's statistics for the freshly written rows (PostgreSQL keeps
    them current with autovacuum in production; inside the benchmark's transaction it
    would plan against empty-table estimates)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE knowledge_passage, knowledge_messageindexentry, conversations_message")


def full_history(conversation: Conversation, current: Message) -> list[Message]:
    return list(
        Message.objects.filter(conversation=conversation, kind__in=MODEL_KINDS, seq__lte=current.seq).order_by("seq")
    )


def last_n(conversation: Conversation, current: Message, budget: int) -> list[Message]:
    """The newest messages that fit the budget (what a plain sliding window sends)."""
    chosen: list[Message] = []
    used = 0
    for message in Message.objects.filter(
        conversation=conversation, kind__in=MODEL_KINDS, seq__lte=current.seq
    ).order_by("-seq"):
        cost = message.token_count + ITEM_OVERHEAD_TOKENS
        if used + cost > budget:
            break
        chosen.append(message)
        used += cost
    return chosen[::-1]


def tokens(messages: list[Message]) -> int:
    return sum(m.token_count + ITEM_OVERHEAD_TOKENS for m in messages)


def recalled(messages: list[Message], fact_message_id: int) -> bool:
    """The message stating the fact is in the context (matching the fact's words
    instead would credit filler that happens to share them)."""
    return any(m.pk == fact_message_id for m in messages)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall-clock milliseconds of each of `repeat` calls, after one warm-up call; and
    its result."""
    samples, _, result = timed_cpu(fn, repeat)
    return samples, result


def timed_cpu(fn: Callable[[], Any], repeat: int) -> tuple[list[float], list[float], Any]:
    """Wall-clock and CPU milliseconds of each call (CPU time excludes waiting for a
    core on a busy machine; SQLite runs in-process, so it includes the queries)."""
    result = fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu, result


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Row:
    strategy: str
    prompt_tokens: list[int]
    hits: int
    questions: int

    @property
    def recall(self) -> float:
        return self.hits / self.questions if self.questions else 0.0


def compare(planted: list[Planted], budget: int, retrievers: dict[str, Retriever]) -> list[Row]:
    """Prompt tokens and recall of each strategy over every planted question."""
    rows = {name: Row(name, [], 0, 0) for name in ["full history", "last-N (same budget)", *retrievers]}
    for case in planted:
        for fact_name, question in QUESTIONS.items():
            current = ask(case.conversation, question)
            fact = case.facts[fact_name]
            contexts = {
                "full history": full_history(case.conversation, current),
                "last-N (same budget)": last_n(case.conversation, current, budget),
            }
            for name, retriever in retrievers.items():
                contexts[name] = select_history(
                    conversation_id=case.conversation.pk, current=current, budget=budget, retriever=retriever
                ).messages
            for name, messages in contexts.items():
                row = rows[name]
                row.prompt_tokens.append(tokens(messages))
                row.hits += recalled(messages, fact)
                row.questions += 1
    return list(rows.values())


def selection_latency(
    case: Planted, budget: int, retriever: Retriever, repeat: int
) -> tuple[list[float], list[float], int]:
    """Selection wall and CPU times (ms) over the planted questions, and how many of
    them recalled their fact."""
    wall: list[float] = []
    cpu: list[float] = []
    hits = 0
    for fact_name, question in QUESTIONS.items():
        current = ask(case.conversation, question)
        times, cpu_times, selection = timed_cpu(
            functools.partial(
                select_history,
                conversation_id=case.conversation.pk, current=current, budget=budget, retriever=retriever,
            ),
            repeat,
        )
        wall += times
        cpu += cpu_times
        hits += recalled(selection.messages, case.facts[fact_name])
    return wall, cpu, hits


def knowledge_corpus(passages: int, rng: random.Random) -> list[str]:
    """Create documents totalling `passages` passages of Zipf-distributed pseudo-words;
    returns sample queries drawn from the same vocabulary."""
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "po", "gu", "fe", "ri", "za", "mo"]
    vocabulary = sorted({"".join(rng.choice(syllables) for _ in range(rng.randrange(2, 5))) for _ in range(6000)})
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    sections = 20
    for number in range(passages // sections):
        body = []
        for section in range(sections):
            words = rng.choices(vocabulary, weights, k=60)
            body.append(f"## Section {section} {' '.join(words[:3])}\n\n{' '.join(words)}.")
        document_create(title=f"Article {number} {rng.choice(vocabulary)}", body="\n\n".join(body))
    return [" ".join(rng.choices(vocabulary, k=rng.randrange(2, 6))) for _ in range(60)]


class Rollback(Exception):
    """Raised to undo everything the benchmark wrote."""


def in_rollback(fn: Callable[[], Any]) -> Any:
    """Run `fn` in a transaction that is always rolled back; return its result."""
    box: list[Any] = []
    try:
        with transaction.atomic():
            box.append(fn())
            raise Rollback
    except Rollback:
        pass
    return box[0]


@contextmanager
def semantic_ranking(kind: str) -> Iterator[None]:
    """Switch the platform's KNOWLEDGE_EMBEDDINGS option for the duration."""
    options = settings.SUPPORT_PLATFORM
    previous = options["KNOWLEDGE_EMBEDDINGS"]
    options["KNOWLEDGE_EMBEDDINGS"] = kind
    try:
        yield
    finally:
        options["KNOWLEDGE_EMBEDDINGS"] = previous


def latency_line(samples: list[float]) -> str:
    return (f"median {median(samples):.2f} ms, p95 {percentile(samples, 0.95):.2f} ms, "
            f"max {max(samples):.2f} ms")


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else 0.0


def mean(values: list[int]) -> float:
    return sum(values) / len(values) if values else 0.0
