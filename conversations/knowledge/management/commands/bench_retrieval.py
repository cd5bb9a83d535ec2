"""`manage.py bench_retrieval`: prompt tokens, recall and speed of history selection
(full history vs last-N vs the selector at a fixed budget), and knowledge-base search
latency. Everything it writes is rolled back; the database is left as it was. It holds
one write transaction for its whole run (about a minute at the defaults), so run it
against an idle database."""

from __future__ import annotations

import functools
import random
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from conversations.knowledge import bench
from conversations.knowledge.models import Passage
from conversations.knowledge.retriever import FullTextRetriever
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import knowledge_reindex
from conversations.retrieval import KeywordRetriever, Retriever


class Command(BaseCommand):
    help = "Benchmark RAG-selected history and knowledge-base search on synthetic data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--conversations", type=int, default=10, help="planted conversations (default 10)")
        parser.add_argument("--exchanges", type=int, default=300, help="exchanges per conversation (default 300)")
        parser.add_argument("--budget", type=int, default=800, help="history token budget (default 800)")
        parser.add_argument(
            "--sweep", type=lambda v: [int(x) for x in v.split(",")], default=[400, 800, 1500, 3000],
            help="budgets for the sweep table (default 400,800,1500,3000)",
        )
        parser.add_argument("--passages", type=int, default=10_000, help="knowledge-base passages (default 10000)")
        parser.add_argument("--repeat", type=int, default=20, help="timed repetitions per question (default 20)")
        parser.add_argument(
            "--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[1_000, 10_000],
            help="conversation lengths in messages for the selection-time table (default 1000,10000)",
        )
        parser.add_argument(
            "--no-semantic", dest="semantic", action="store_false",
            help="skip the knowledge-search timing with offline semantic ranking",
        )
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        bench.in_rollback(lambda: self._run(options))

    def _run(self, options: dict[str, Any]) -> None:
        rng = random.Random(options["seed"])
        budget = options["budget"]
        fulltext, keyword = FullTextRetriever(), KeywordRetriever()
        out = self.stdout.write
        out(f"Database: {connection.vendor}; history budget {budget} tokens (o200k_base, "
            f"+{bench.ITEM_OVERHEAD_TOKENS} per item)")

        planted = [bench.planted_conversation(options["exchanges"], rng) for _ in range(options["conversations"])]
        bench.analyze()
        retrievers: dict[str, Retriever] = {"selector (full-text)": fulltext, "selector (keyword fallback)": keyword}
        rows = bench.compare(planted, budget, retrievers)
        full = bench.mean(rows[0].prompt_tokens)
        out("")
        out(f"History at {options['exchanges']} exchanges: {len(planted)} conversations x "
            f"{len(bench.QUESTIONS)} questions about facts planted in the first 15 exchanges")
        out(f"{'strategy':<30}{'prompt tokens':>15}{'fewer than full':>17}{'recall':>10}")
        for row in rows:
            tokens = bench.mean(row.prompt_tokens)
            out(f"{row.strategy:<30}{tokens:>15.0f}{(1 - tokens / full) * 100:>16.1f}%{row.recall * 100:>9.1f}%")

        out("")
        out("Budget sweep (selector, full-text retriever):")
        out(f"{'budget':>8}{'prompt tokens':>15}{'fewer than full':>17}{'recall':>10}{'last-N recall':>15}")
        for swept in options["sweep"]:
            row_n, row_s = bench.compare(planted, swept, {"selector": fulltext})[1:]
            tokens = bench.mean(row_s.prompt_tokens)
            out(f"{swept:>8}{tokens:>15.0f}{(1 - tokens / full) * 100:>16.1f}%{row_s.recall * 100:>9.1f}%"
                f"{row_n.recall * 100:>14.1f}%")

        out("")
        out(f"Selection time, select_history at budget {budget} (ms over {options['repeat']} runs x "
            f"{len(bench.QUESTIONS)} questions):")
        out(f"{'messages':>10}  {'retriever':<12}{'median':>9}{'p95':>9}{'max':>9}{'cpu median':>12}"
            f"{'cpu p95':>9}{'recall':>9}")
        for messages in options["sizes"]:
            case = bench.planted_conversation(messages // 2, rng)
            bench.analyze()
            for name, retriever in (("full-text", fulltext), ("keyword", keyword)):
                wall, cpu, hits = bench.selection_latency(case, budget, retriever, options["repeat"])
                out(f"{messages:>10,}  {name:<12}{bench.median(wall):>9.2f}"
                    f"{bench.percentile(wall, 0.95):>9.2f}{max(wall):>9.2f}{bench.median(cpu):>12.2f}"
                    f"{bench.percentile(cpu, 0.95):>9.2f}{f'{hits}/{len(bench.QUESTIONS)}':>9}")

        out("")
        queries = bench.knowledge_corpus(options["passages"], rng)
        bench.analyze()
        count = Passage.objects.count()
        samples = []
        for query in queries:
            times, _ = bench.timed(functools.partial(knowledge_search, query=query), 5)
            samples += times
        out(f"Knowledge-base search over {count:,} passages ({len(queries)} queries x 5 runs):")
        out(f"  full-text:                   {bench.latency_line(samples)}")
        if options["semantic"]:
            with bench.semantic_ranking("offline"):
                knowledge_reindex()  # embeds every passage with the bundled model
                samples = []
                for query in queries:
                    times, _ = bench.timed(functools.partial(knowledge_search, query=query), 5)
                    samples += times
            out(f"  full-text + offline semantic: {bench.latency_line(samples)}")
