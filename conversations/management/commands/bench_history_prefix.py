"""`manage.py bench_history_prefix`: recall of early facts against prompt-cache share,
when long conversations are answered turn by turn with the stable history prefix.

Each conversation is a scripted support chat (varied filler: the benchmark's question
and answer pairs mixed with free sentences over a shop vocabulary, and a stock lookup
now and then), with the three facts of `bench_retrieval` planted in the first 15
exchanges and asked about at a few points (`--probes`, exchange numbers; each question
is its own turn, a few exchanges apart). The script is stored first; then every user
message is answered in order through `select_history(previous=...)`, each turn given
the previous turn's recorded selection exactly as the engine does (items stored after
a message are not visible to its selection, so this equals answering live).

For each policy it prints the recall of the needed fact (the message stating it is
selected, as `bench_retrieval` defines it), the share of input tokens a provider could
serve from its prompt cache (`wire.PromptCache`: the longest common prefix with the
previous request of the conversation, nothing under 1,024 tokens, steps of 128, over
instructions, tools and input), on the turns whose conversation exceeds the budget,
the history sent, how often the selection was rebuilt, and the selection time.

Policies: `fresh` selects afresh every turn (before the stable prefix); `stable` is the
stable prefix with retrieval only at rebuilds (rebuilding under half the budget);
`block-R/S` carries the previous selection within 1-R of the budget and sends the items
retrieved for the current message that it lacks in a recalled block of up to R of the
budget, rebuilding under S (the default rule: R = `RECALL_SHARE`, S = `REBUILD_SHARE`);
`check-K/S/M` rebuilds under S whenever one of the K best items a fresh selection
retrieves (`all`: any), scoring at least M times their median, is missing.
Everything it writes is rolled back.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from conversations import retrieval
from conversations.agent import history, wire
from conversations.agent.history import select_history
from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS
from conversations.knowledge import bench
from conversations.knowledge.retriever import FullTextRetriever
from conversations.management.commands.bench_engine import WORDS
from conversations.management.commands.bench_prompt_cache import INSTRUCTIONS
from conversations.models import Conversation, Message
from conversations.models.message import MessageKind

TOOLS = [
    {"type": "function", "name": "lookup_order", "description": "Look up an order by number.",
     "parameters": {"type": "object", "properties": {"order_number": {"type": "string"}}}},
]
DEFAULT_POLICIES = "fresh,stable,check-3/0.5/1.5,block-0.05/0.5,block-0.1/0.5"


@dataclass
class Script:
    conversation: Conversation
    facts: dict[str, int]  # fact name -> id of the message stating it
    questions: dict[int, str]  # user message id -> the fact it asks about
    probe_of: dict[int, int]  # user message id -> the probe (exchange number) it belongs to


@dataclass
class Figures:
    hits: dict[int, int] = field(default_factory=dict)
    asked: dict[int, int] = field(default_factory=dict)
    input_tokens: int = 0
    cached_tokens: int = 0
    history_tokens: list[int] = field(default_factory=list)
    rebuilds: int = 0
    turns: int = 0
    millis: list[float] = field(default_factory=list)


def _free_sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))).capitalize() + "."


def script(exchanges: int, probes: list[int], rng: random.Random) -> Script:
    """Store a scripted conversation; facts planted early, questions at each probe."""
    conversation = Conversation.objects.create(agent=bench._agent(), channel="api")
    order = f"NW-{rng.randrange(10000, 99999)}"
    street, city = rng.choice(list(zip(bench.STREETS, bench.CITIES, strict=True)))
    channel, other = rng.choice(bench.CHANNELS)
    planted = {
        2: (f"My order number is {order}, it's a grinder and two mugs.", f"Thanks, I have order {order} open."),
        7: (f"Please change the delivery address to {rng.randrange(2, 90)} {street}, {city}.",
            "Done, the delivery address is updated for the parcel."),
        13: (f"By the way, I prefer {channel}, please don't contact me by {other}.",
             f"Noted, we'll use {channel} if we need to reach you."),
    }
    facts_at = dict(zip((2, 7, 13), bench.QUESTIONS, strict=True))
    asking: dict[int, tuple[str, int]] = {}
    for probe in probes:
        for offset, name in enumerate(bench.QUESTIONS):
            asking[probe + 4 * offset] = (name, probe)
    items: list[dict[str, Any]] = []
    marks: list[tuple[int, str, int | None]] = []  # (index in items, what, probe)
    for n in range(max(exchanges, max(asking, default=0) + 1)):
        if n in planted:
            user, answer = planted[n]
            marks.append((len(items), facts_at[n], None))
        elif n in asking:
            name, probe = asking[n]
            user, answer = bench.QUESTIONS[name], "Let me check what you told me earlier."
            marks.append((len(items), name, probe))
        elif rng.random() < 0.5:
            user, answer = bench.FILLER[rng.randrange(len(bench.FILLER))]
        else:
            user, answer = _free_sentence(rng), _free_sentence(rng)
        items.append({"kind": "user", "text": user})
        if rng.random() < 0.06:
            call_id = f"call_{n}"
            number = str(rng.randrange(10000, 99999))
            items += [
                {"kind": "function_call", "call_id": call_id, "tool_name": "lookup_order",
                 "tool_arguments": json.dumps({"order_number": number})},
                {"kind": "function_output", "call_id": call_id, "tool_name": "lookup_order",
                 "text": json.dumps({"order_number": number, "status": rng.choice(["shipped", "packed"])})},
            ]
        items.append({"kind": "assistant", "text": answer})
    stored = bench._append(conversation, items)
    facts: dict[str, int] = {}
    questions: dict[int, str] = {}
    probe_of: dict[int, int] = {}
    for index, name, mark_probe in marks:
        if mark_probe is None:
            facts[name] = stored[index].pk
        else:
            questions[stored[index].pk] = name
            probe_of[stored[index].pk] = mark_probe
    return Script(conversation, facts, questions, probe_of)


KNOBS = ("RECALL_SHARE", "REBUILD_SHARE", "RECALL_CHECK_TOP", "RECALL_CHECK_MARGIN")


@contextmanager
def policy(name: str) -> Iterator[bool]:
    """Set the selector's rule for `name`; yields whether turns pass `previous`."""
    saved = {knob: getattr(history, knob) for knob in KNOBS}
    values: dict[str, Any] = {"RECALL_SHARE": 0.0, "REBUILD_SHARE": 0.5, "RECALL_CHECK_TOP": 0,
                              "RECALL_CHECK_MARGIN": 0.0}
    kind, _, spec = name.partition("-")
    parts = spec.split("/")
    if kind == "block":
        values["RECALL_SHARE"], values["REBUILD_SHARE"] = float(parts[0]), float(parts[1])
    elif kind == "check":
        values["RECALL_CHECK_TOP"] = None if parts[0] == "all" else int(parts[0])
        values["REBUILD_SHARE"] = float(parts[1])
        values["RECALL_CHECK_MARGIN"] = float(parts[2]) if len(parts) > 2 else 0.0
    elif kind not in ("fresh", "stable"):
        raise ValueError(f"unknown policy {name!r}")
    try:
        for knob, value in values.items():
            setattr(history, knob, value)
        yield kind != "fresh"
    finally:
        for knob, value in saved.items():
            setattr(history, knob, value)


def replay(case: Script, budget: int, retriever: retrieval.Retriever, carry: bool, figures: Figures) -> None:
    """Answer every user message of `case` in order, as the engine would."""
    cache = wire.PromptCache()
    previous: list[dict[str, Any]] | None = None
    seen_tokens = 0
    rows = Message.objects.filter(conversation=case.conversation, kind__in=retrieval.MODEL_KINDS).order_by("seq")
    for message in rows:
        if message.kind != MessageKind.USER:
            seen_tokens += message.token_count + ITEM_OVERHEAD_TOKENS
            continue
        start = time.perf_counter()
        selection = select_history(
            conversation_id=case.conversation.pk, current=message, budget=budget, retriever=retriever,
            previous=previous if carry else None,
        )
        figures.millis.append((time.perf_counter() - start) * 1000)
        ids = [item.message_id for item in selection.items]
        if carry and previous and not _extends(previous, ids):
            figures.rebuilds += 1
        previous = selection.explanation
        body = {"instructions": INSTRUCTIONS, "tools": TOOLS, "input": selection.input_items,
                "prompt_cache_key": str(case.conversation.pk)}
        total, cached = cache.usage(body)
        if seen_tokens > budget:
            figures.turns += 1
            figures.input_tokens += total
            figures.cached_tokens += cached
            figures.history_tokens.append(selection.tokens)
        if message.pk in case.questions:
            probe = case.probe_of[message.pk]
            figures.asked[probe] = figures.asked.get(probe, 0) + 1
            figures.hits[probe] = figures.hits.get(probe, 0) + (case.facts[case.questions[message.pk]] in ids)
        seen_tokens += message.token_count + ITEM_OVERHEAD_TOKENS


def _extends(previous: list[dict[str, Any]], ids: list[int | None]) -> bool:
    """The new selection starts with the previous one (the current message aside)."""
    before = [entry["message_id"] for entry in previous if entry["reason"] not in ("current", "recall note", "recalled")]
    return ids[: len(before)] == before


class Command(BaseCommand):
    help = "Recall of early facts against prompt-cache share over turn-by-turn conversations."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--conversations", type=int, default=6)
        parser.add_argument("--exchanges", type=int, default=300)
        parser.add_argument("--probes", default="60,150,290", help="exchange numbers where the facts are asked")
        parser.add_argument("--budgets", default="800,2000,8000")
        parser.add_argument("--policies", default=DEFAULT_POLICIES)
        parser.add_argument("--retriever", choices=["full-text", "keyword"], default="full-text")
        parser.add_argument("--seed", type=int, default=13)

    def handle(self, *args: Any, **options: Any) -> None:
        bench.in_rollback(lambda: self._run(options))

    def _run(self, options: dict[str, Any]) -> None:
        rng = random.Random(options["seed"])
        probes = [int(p) for p in options["probes"].split(",")]
        retriever = FullTextRetriever() if options["retriever"] == "full-text" else retrieval.KeywordRetriever()
        cases = [script(options["exchanges"], probes, rng) for _ in range(options["conversations"])]
        bench.analyze()
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        out = self.stdout.write
        out(f"Database: {connection.vendor}; {len(cases)} conversations x {options['exchanges']} exchanges, "
            f"facts asked at exchanges {options['probes']}; retriever {options['retriever']}; "
            f"{os.cpu_count()} CPUs, load average {load}")
        probe_heads = "".join(f"{'@' + str(p):>7}" for p in probes)
        for budget in [int(b) for b in options["budgets"].split(",")]:
            out("")
            out(f"Budget {budget} tokens")
            out(f"{'policy':<16}{'recall':>8}{probe_heads}{'cached':>9}{'history':>9}{'rebuilds':>10}"
                f"{'ms p50':>8}{'ms p95':>8}")
            for name in options["policies"].split(","):
                figures = Figures()
                with policy(name) as carry:
                    for case in cases:
                        replay(case, budget, retriever, carry, figures)
                hits, asked = sum(figures.hits.values()), sum(figures.asked.values())
                per_probe = "".join(f"{figures.hits.get(p, 0) / max(1, figures.asked.get(p, 0)):>7.0%}" for p in probes)
                out(f"{name:<16}{hits / max(1, asked):>8.1%}{per_probe}"
                    f"{figures.cached_tokens / max(1, figures.input_tokens):>9.1%}"
                    f"{bench.mean(figures.history_tokens):>9.0f}"
                    f"{figures.rebuilds / max(1, figures.turns):>10.1%}"
                    f"{bench.median(figures.millis):>8.1f}{bench.percentile(figures.millis, 0.95):>8.1f}")
