"""`manage.py bench_knowledge_search`: knowledge-base search quality on the labelled set
(`conversations/knowledge/kb_labelled.py`): hit@5 and MRR per question kind (short
natural / long scenario / exact title) and R@1 on exact titles, for full-text search
before (16 terms, digits first, title x4) and after (terms by rarity, tuned weights,
title match), plain BM25 on the same passages, semantic ranking alone and fused, with
wordllama and with MiniLM as the offline model. Figures are on the held-out split
unless `--split` says otherwise; `--tune` prints the weight grid on the tuning split
(where the defaults were chosen). Everything it writes is rolled back."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection

from conversations.knowledge import bench, kb_bench, kb_labelled, semantic
from conversations.knowledge.kb_bench import KINDS, Ranker, Scores
from conversations.knowledge.selectors import knowledge_search
from conversations.knowledge.services import knowledge_reindex

BEFORE_WEIGHTS = {"sqlite": (4.0, 2.0, 1.0), "postgresql": (1.0, 0.4)}
GRID: dict[str, list[tuple[float, ...]]] = {
    "sqlite": [(4.0, 2.0, 1.0), (3.0, 1.0, 1.0), (2.0, 2.0, 1.0), (2.0, 1.0, 1.0), (1.5, 1.0, 1.0),
               (1.0, 1.0, 1.0), (1.0, 0.5, 1.0)],
    "postgresql": [(1.0, 0.4), (1.0, 0.7), (1.0, 1.0), (0.7, 1.0), (0.4, 1.0),
                   (1.0, 0.4, 1), (1.0, 0.7, 1), (1.0, 1.0, 1), (1.0, 0.7, 2)],
}
FUSION_GRID = [(1.0, 1.0), (1.0, 1.5), (1.0, 2.0), (1.0, 3.0), (1.0, 0.5)]
SHARES = [0.05, 0.1, 0.2, 0.35, 1.0]


def fused(query: str) -> list[int]:
    return [hit.passage_id for hit in knowledge_search(query=query, limit=kb_bench.DEPTH)]


class Command(BaseCommand):
    help = "Measure knowledge-base search quality on the labelled help-centre set."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--split", choices=["held-out", "tuning", "all"], default="held-out")
        parser.add_argument("--tune", action="store_true", help="print the weight grid on the tuning split")
        parser.add_argument("--no-semantic", dest="semantic", action="store_false",
                            help="skip the embedding rankers (wordllama, MiniLM)")
        parser.add_argument("--per-kind", type=int, default=0,
                            help="at most this many questions of each kind (default: all; for quick checks)")
        parser.add_argument("--seed", type=int, default=22)

    def handle(self, *args: Any, **options: Any) -> None:
        with bench.semantic_ranking(""):
            bench.in_rollback(lambda: self._run(options))

    def _run(self, options: dict[str, Any]) -> None:
        out = self.stdout.write
        vendor = connection.vendor
        questions, owner = kb_bench.load(options["seed"])
        bench.analyze()
        tuning, held = kb_labelled.split(questions, options["seed"])
        chosen = {"held-out": held, "tuning": tuning, "all": questions}[options["split"]]
        if options["per_kind"]:
            chosen = [q for kind in KINDS for q in [q for q in chosen if q.kind == kind][: options["per_kind"]]]
        counts = ", ".join(f"{sum(q.kind == k for q in chosen)} {k}" for k in KINDS)
        out(f"Database: {vendor}; {len(set(owner.values()))} documents, {len(owner)} passages; "
            f"{options['split']} split: {len(chosen)} questions ({counts})")

        if options["tune"]:
            self._tune(tuning, owner, vendor)

        rows: list[tuple[str, Scores]] = [
            ("full-text before", kb_bench.evaluate(kb_bench.before(BEFORE_WEIGHTS[vendor]), chosen, owner)),
            ("full-text after", kb_bench.evaluate(kb_bench.fulltext(), chosen, owner)),
            ("BM25 (k1 1.2, b 0.75)", kb_bench.evaluate(kb_bench.BM25(), chosen, owner)),
        ]
        if options["semantic"]:
            for name, model in (("wordllama", semantic.OfflineEmbedder()), ("MiniLM", semantic.MiniLMEmbedder())):
                with kb_bench.offline_model(kb_bench.Memoised(model)), bench.semantic_ranking("offline"):
                    start = time.process_time()
                    passages = knowledge_reindex()
                    cpu = (time.process_time() - start) * 1000 / max(passages, 1)
                    out(f"  {name}: embedded {passages} passages, {cpu:.1f} ms CPU per passage")
                    rows.append((f"semantic {name}", kb_bench.evaluate(kb_bench.semantic_only, chosen, owner)))
                    rows.append((f"fused {name}", kb_bench.evaluate(fused, chosen, owner)))
                    if options["tune"]:
                        self._tune_fusion(name, tuning, owner)
        out("")
        self._table(rows)

    def _table(self, rows: list[tuple[str, Scores]]) -> None:
        out = self.stdout.write
        out(f"{'ranker':<24}{'short hit@5':>12}{'MRR':>7}{'long hit@5':>12}{'MRR':>7}"
            f"{'title hit@5':>12}{'MRR':>7}{'title R@1':>10}")
        for name, s in rows:
            out(f"{name:<24}{s.hit5('short'):>12.3f}{s.mrr('short'):>7.3f}{s.hit5('long'):>12.3f}"
                f"{s.mrr('long'):>7.3f}{s.hit5('title'):>12.3f}{s.mrr('title'):>7.3f}{s.r1('title'):>10.3f}")

    def _tune_fusion(self, name: str, tuning: list[kb_labelled.Question], owner: dict[int, str]) -> None:
        out = self.stdout.write
        out(f"  Tuning split, fused {name}, by RRF weights (full-text, semantic):")
        for weights in FUSION_GRID:
            with kb_bench.fusion_weights(weights):
                s = kb_bench.evaluate(fused, tuning, owner)
            out(f"    {str(weights):<12} short hit@5 {s.hit5('short'):.3f} MRR {s.mrr('short'):.3f}  "
                f"long hit@5 {s.hit5('long'):.3f} MRR {s.mrr('long'):.3f}  title R@1 {s.r1('title'):.3f}")

    def _tune(self, tuning: list[kb_labelled.Question], owner: dict[int, str], vendor: str) -> None:
        out = self.stdout.write
        out("")
        out(f"Tuning split ({len(tuning)} questions): full-text after, by weights and common-word share")
        out(f"{'weights':<18}{'share':>7}{'short hit@5':>12}{'long hit@5':>12}{'short MRR':>11}"
            f"{'long MRR':>10}{'title R@1':>10}")
        for weights in GRID[vendor]:
            for share in SHARES:
                ranker: Ranker = kb_bench.fulltext(weights, share)
                s = kb_bench.evaluate(ranker, tuning, owner)
                out(f"{str(weights):<18}{share:>7.2f}{s.hit5('short'):>12.3f}{s.hit5('long'):>12.3f}"
                    f"{s.mrr('short'):>11.3f}{s.mrr('long'):>10.3f}{s.r1('title'):>10.3f}")
        bm25 = kb_bench.evaluate(kb_bench.BM25(), tuning, owner)
        out(f"{'BM25':<25}{bm25.hit5('short'):>12.3f}{bm25.hit5('long'):>12.3f}{bm25.mrr('short'):>11.3f}"
            f"{bm25.mrr('long'):>10.3f}{bm25.r1('title'):>10.3f}")
        out("")
