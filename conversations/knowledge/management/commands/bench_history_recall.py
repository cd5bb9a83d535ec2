"""`manage.py bench_history_recall`: recall of early facts by question kind (word /
paraphrase / indirect) at several budgets, for last-N, today's full-text selector and
the hybrid (full-text + semantic) selector; tokens sent against the full history; and
selection time at 10,000 items. "hybrid + facts" is the default selector: the hybrid
with the customer facts section (a question counts as recalled when its fact's message
is sent, or a fact kept from that message is); the others run without facts, as before
them. The conversations come from the seeded generator in
`conversations/knowledge/history_bench.py`; `--seed` picks the set (the retriever's
weights were tuned on seed 11, the default; report figures on another seed, as
docs/architecture.md does with 2027). Everything it writes is rolled back.
`--timing-only` measures only the selection time (for PostgreSQL, where a whole recall run
takes long), `--cost-only` only the statements per search.

The hybrid retriever runs with `HISTORY_EMBEDDINGS=offline` (all-MiniLM-L6-v2 on
NumPy); items are embedded with `embed_pending` before the questions, as the
background step would have done. Each question is stored, answered by every policy at
every budget, and rolled back before the next one.
"""

from __future__ import annotations

import random
import statistics
import time
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from conversations.agent.history import select_history
from conversations.agent.tokens import ITEM_OVERHEAD_TOKENS
from conversations.knowledge import bench, history_bench, history_semantic, search
from conversations.knowledge.retriever import FullTextRetriever
from conversations.models import Conversation, CustomerFact, Message
from conversations.retrieval import MODEL_KINDS, Retriever


class _Nothing:
    """No retrieval: the selector then sends the newest items that fit (last-N)."""

    def retrieve(self, **kwargs: Any) -> list[tuple[int, float]]:
        return []


@contextmanager
def _traced() -> Any:
    """A one-element list counting the statements SQLite runs inside the block."""
    count = [0]
    connection.ensure_connection()
    raw = connection.connection
    if connection.vendor != "sqlite":
        yield count
        return
    raw.set_trace_callback(lambda sql: count.__setitem__(0, count[0] + 1))
    try:
        yield count
    finally:
        raw.set_trace_callback(None)


@contextmanager
def _facts(on: bool) -> Any:
    """The customer facts section at its configured share, or none (the policies before it)."""
    options = settings.SUPPORT_PLATFORM
    settings.SUPPORT_PLATFORM = {**options, "FACTS_SHARE": options["FACTS_SHARE"] if on else 0.0}
    try:
        yield
    finally:
        settings.SUPPORT_PLATFORM = options


@contextmanager
def _embeddings(kind: str) -> Any:
    options = settings.SUPPORT_PLATFORM
    settings.SUPPORT_PLATFORM = {**options, "HISTORY_EMBEDDINGS": kind, "HISTORY_EMBED_BACKGROUND": False}
    try:
        yield
    finally:
        settings.SUPPORT_PLATFORM = options


def _store(items: list[dict[str, Any]]) -> Conversation:
    conversation = Conversation.objects.create(agent=bench._agent(), channel="api")
    for start in range(0, len(items), 400):
        bench._append(conversation, items[start : start + 400])
    return conversation


def _embed_all(conversation: Conversation) -> None:
    while history_semantic.embed_pending(conversation.pk, limit=1000):
        pass


class Command(BaseCommand):
    help = "Benchmark history recall (word / paraphrase / indirect questions) and selection time."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--conversations", type=int, default=40)
        parser.add_argument("--budgets", type=lambda v: [int(x) for x in v.split(",")], default=[400, 800, 2000])
        parser.add_argument("--timing-items", type=int, default=10_000)
        parser.add_argument("--timing-questions", type=int, default=20)
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--cost-only", action="store_true", help="only the retrieval cost at 100 / 1,000 / 10,000 items")
        parser.add_argument("--timing-only", action="store_true",
                            help="only the selection time at --timing-items (its texts from --conversations cases)")

    def handle(self, *args: Any, **options: Any) -> None:
        with _embeddings("offline"):
            if options["cost_only"]:
                bench.in_rollback(lambda: self._cost(self.stdout.write))
            else:
                bench.in_rollback(lambda: self._run(options))

    def _run(self, options: dict[str, Any]) -> None:
        out = self.stdout.write
        cases = history_bench.generate_all(options["conversations"], options["seed"])
        hybrid = history_semantic.HybridHistoryRetriever()
        policies: dict[str, Retriever] = {"last-N": _Nothing(), "full-text (before)": FullTextRetriever(),
                                          "hybrid": hybrid, "hybrid + facts": hybrid}
        budgets = options["budgets"]
        if options["timing_only"]:
            out(f"Database: {connection.vendor}; timing only, texts of {len(cases)} conversations (seed {options['seed']})")
            self._timing(options, cases, policies, out)
            return
        out(f"Database: {connection.vendor}; {len(cases)} conversations, "
            f"{sum(len(c.items) for c in cases)} items (seed {options['seed']}); budgets {budgets}")
        stored = []
        embed_cpu = 0.0
        embedded = 0
        for case in cases:
            conversation = _store(case.items)
            start = time.process_time()
            _embed_all(conversation)
            embed_cpu += time.process_time() - start
            embedded += len(case.items)
            ids = list(Message.objects.filter(conversation=conversation).order_by("seq").values_list("id", flat=True))
            stored.append((case, conversation, ids))
        bench.analyze()
        out(f"embedding CPU: {embed_cpu * 1000 / embedded:.1f} ms per item stored ({embedded} items; "
            "repeated texts come from the cache)")
        unique = sorted({i["text"] for c in cases for i in c.items if i.get("text")})[:256]
        embedder = history_semantic.history_embedder()
        for batch, label in ((32, "batched by 32"), (1, "one at a time")):
            start = time.process_time()
            for i in range(0, len(unique), batch):
                embedder.embed(unique[i : i + batch])
            out(f"embedding CPU, {len(unique)} distinct texts {label}: "
                f"{(time.process_time() - start) * 1000 / len(unique):.1f} ms per item")
        hits: dict[tuple[str, int, str], list[bool]] = {}
        sent: dict[tuple[str, int], list[int]] = {}
        full: list[int] = []
        over = 0
        for case, conversation, ids in stored:
            kept_from = dict(CustomerFact.objects.filter(conversation=conversation).values_list("id", "message_id"))
            for kind, question, position in case.questions:
                savepoint = transaction.savepoint()
                current = bench.ask(conversation, question)
                full.append(sum(m.token_count + ITEM_OVERHEAD_TOKENS for m in bench.full_history(conversation, current)))
                for name, retriever in policies.items():
                    for budget in budgets:
                        with _facts(name.endswith("facts")):
                            selection = select_history(
                                conversation_id=conversation.pk, current=current, budget=budget, retriever=retriever
                            )
                        chosen = {item.message_id for item in selection.items}
                        chosen |= {kept_from.get(item.fact_id) for item in selection.items if item.fact_id}
                        hits.setdefault((name, budget, kind), []).append(ids[position] in chosen)
                        sent.setdefault((name, budget), []).append(selection.tokens)
                        over += selection.tokens > budget
                transaction.savepoint_rollback(savepoint)
        kinds = ["word", "paraphrase", "indirect"]
        counts = {k: len(hits[(next(iter(policies)), budgets[0], k)]) for k in kinds}
        out("\nRecall by question kind (" + ", ".join(f"{k}: {n}" for k, n in counts.items()) + " questions)")
        out(f"{'policy':<20}{'budget':>7}" + "".join(f"{k:>12}" for k in kinds) + f"{'tokens':>9}{'vs full':>9}")
        mean_full = statistics.mean(full)
        for name in policies:
            for budget in budgets:
                recall = "".join(f"{100 * sum(hits[(name, budget, k)]) / counts[k]:>11.1f}%" for k in kinds)
                tokens = statistics.mean(sent[(name, budget)])
                out(f"{name:<20}{budget:>7}{recall}{tokens:>9.0f}{100 * (1 - tokens / mean_full):>8.1f}%")
        out(f"full history: {mean_full:.0f} tokens per question on average; selections over budget: {over}")
        self._timing(options, cases, policies, out)
        self._cost(out)

    def _cost(self, out: Any) -> None:
        """Statements one history search and one whole selection run at 100 / 1,000 /
        10,000 items, with and without the search window (SQLite: the statements its
        trace callback reports, FTS5's reads of its index included)."""
        rng = random.Random(5)
        filler: list[dict[str, Any]] = []
        while len(filler) < 10_000:
            filler += history_bench._filler(rng)
        conversations = [_store(filler[:size]) for size in (100, 1_000, 10_000)]  # measured after all inserts
        question = "Is the travel mug waterproof and how long does shipping take to Lyon?"
        engine = search.full_text()
        out(f"\nRetrieval cost ({connection.vendor}; per search, and per selection at budget 800)")
        default = search.SEARCH_WINDOW
        try:
            for window in (10**9, default):
                search.SEARCH_WINDOW = window
                label = "whole conversation" if window == 10**9 else f"newest {window}"
                for conversation in conversations:
                    savepoint = transaction.savepoint()
                    current = bench.ask(conversation, question)
                    with _traced() as searched:
                        if engine is not None:
                            engine.search_messages(conversation.pk, search.search_terms(question), current.seq, 50)
                    with _traced() as traced, CaptureQueriesContext(connection) as queries:
                        selection = select_history(conversation_id=conversation.pk, current=current, budget=800,
                                                   retriever=FullTextRetriever())
                    transaction.savepoint_rollback(savepoint)
                    out(f"{label:<20}{current.seq:>7} items: search {searched[0]} statements traced; selection "
                        f"{len(queries.captured_queries)} statements ({traced[0]} traced), "
                        f"{selection.considered} item rows read")
        finally:
            search.SEARCH_WINDOW = default
        out("(traced: the statements SQLite's trace callback reports, FTS5's reads of its index included; "
            "0 on PostgreSQL, which has no such callback)")

    def _timing(self, options: dict[str, Any], cases: list[Any], policies: dict[str, Any], out: Any) -> None:
        size = options["timing_items"]
        if not size:
            return
        items: list[dict[str, Any]] = []
        for case in cases:
            items += [i for i in case.items if i["kind"] in ("user", "assistant")]
        items = (items * (size // max(1, len(items)) + 1))[:size]
        conversation = _store(items)
        _embed_all(conversation)  # texts repeat the cases', so their vectors come from the cache
        bench.analyze()
        assert Message.objects.filter(conversation=conversation, kind__in=MODEL_KINDS).count() == size
        questions = [q for case in cases for _, q, _ in case.questions][: options["timing_questions"]]
        out(f"\nSelection time at {size} items, budget 800 ({len(questions)} questions; CPU ms, p50 / p99)")
        for name, retriever in policies.items():
            cold: list[float] = []
            warm: list[float] = []
            for question in questions:
                savepoint = transaction.savepoint()
                current = bench.ask(conversation, question)
                history_semantic.texts_cache.clear()
                for sample in range(6):
                    start = time.thread_time()
                    with _facts(name.endswith("facts")):
                        select_history(conversation_id=conversation.pk, current=current, budget=800,
                                       retriever=retriever)
                    (cold if sample == 0 else warm).append((time.thread_time() - start) * 1000)
                transaction.savepoint_rollback(savepoint)
            out(f"{name:<20} first call {bench.percentile(cold, 0.5):7.1f} / {bench.percentile(cold, 0.99):7.1f}"
                f"   repeated {bench.percentile(warm, 0.5):7.1f} / {bench.percentile(warm, 0.99):7.1f}")
        out("(first call: the query and context embedded by the model; repeated: their vectors cached, "
            "as when the background step has embedded the current message)")
