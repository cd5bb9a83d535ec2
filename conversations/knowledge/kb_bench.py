"""Measurements for `manage.py bench_knowledge_search`: rankers over the labelled set
(`kb_labelled`), scored per question kind.

A ranker maps a question to passage ids, best first; the passages' documents, first
occurrence kept, are the ranking scored: hit@5 (a labelled document among the first 5
documents), MRR (1 / rank of the first labelled document, 0 beyond `DEPTH`), and R@1
for exact titles. The BM25 baseline is plain Okapi BM25 (k1 1.2, b 0.75) computed here
over the same passages (title, heading and text as one field), every query word, no
stemming.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from conversations.knowledge import kb_labelled, selectors, semantic
from conversations.knowledge.kb_labelled import Question
from conversations.knowledge.models import Passage
from conversations.knowledge.ranking import COMMON_SHARE, query_words, rare_terms, search_terms
from conversations.knowledge.search import full_text, passage_frequencies
from conversations.knowledge.selectors import _title_first
from conversations.knowledge.services import document_create

DEPTH = 30
KINDS = ("short", "long", "title")
Ranker = Callable[[str], list[int]]


def load(seed: int) -> tuple[list[Question], dict[int, str]]:
    """Create the labelled documents; returns the questions and each passage's
    document key."""
    docs = kb_labelled.documents(seed)
    ids = {doc.key: document_create(title=doc.title, body=doc.body).pk for doc in docs}
    keys = {pk: key for key, pk in ids.items()}
    owner = {pk: keys[doc] for pk, doc in Passage.objects.values_list("id", "document_id")}
    return kb_labelled.questions(docs, seed), owner


@dataclass
class Scores:
    hits: dict[str, list[float]]
    ranks: dict[str, list[float]]
    first: dict[str, list[float]]

    def hit5(self, kind: str) -> float:
        return _mean(self.hits[kind])

    def mrr(self, kind: str) -> float:
        return _mean(self.ranks[kind])

    def r1(self, kind: str) -> float:
        return _mean(self.first[kind])

    def natural_long_hit5(self) -> float:
        return _mean(self.hits["short"] + self.hits["long"])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def evaluate(ranker: Ranker, questions: list[Question], owner: dict[int, str]) -> Scores:
    scores = Scores({k: [] for k in KINDS}, {k: [] for k in KINDS}, {k: [] for k in KINDS})
    for question in questions:
        documents: list[str] = []
        for pk in ranker(question.text):
            key = owner.get(pk)
            if key is not None and key not in documents:
                documents.append(key)
        rank = next((n for n, key in enumerate(documents[:DEPTH], start=1) if key in question.labels), 0)
        scores.hits[question.kind].append(float(0 < rank <= 5))
        scores.ranks[question.kind].append(1 / rank if rank else 0.0)
        scores.first[question.kind].append(float(rank == 1))
    return scores


def before(weights: tuple[float, ...]) -> Ranker:
    """Full-text search as it was: at most 16 terms, digits then longest words first."""
    engine = full_text()
    assert engine is not None

    def rank(query: str) -> list[int]:
        return [pk for pk, _ in engine.search_passages(search_terms(query), DEPTH * 2, weights)]

    return rank


def fulltext(weights: tuple[float, ...] | None = None, common_share: float = COMMON_SHARE,
             title_boost: bool = True) -> Ranker:
    """Full-text search as `knowledge_search` does it, with its knobs exposed."""
    engine = full_text()
    assert engine is not None

    def rank(query: str) -> list[int]:
        words = query_words(query)
        total, frequencies = passage_frequencies(engine, words)
        terms = rare_terms(words, frequencies, total, common_share=common_share)
        ranked = engine.search_passages(terms, DEPTH * 2, weights)
        return [pk for pk, _ in (_title_first(query, ranked) if title_boost else ranked)]

    return rank


def semantic_only(query: str) -> list[int]:
    return [pk for pk, _ in semantic.semantic_search(query, DEPTH * 2)]


class BM25:
    """Okapi BM25 over the passages (k1 1.2, b 0.75), title + heading + text."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.docs: list[tuple[int, Counter[str], int]] = []
        df: Counter[str] = Counter()
        for pk, title, heading, text in Passage.objects.values_list("id", "title", "heading", "text"):
            tokens = _tokens(f"{title} {heading} {text}")
            counts = Counter(tokens)
            self.docs.append((pk, counts, len(tokens)))
            df.update(counts.keys())
        n = len(self.docs)
        self.average = sum(length for *_, length in self.docs) / max(n, 1)
        self.idf = {term: math.log((n - f + 0.5) / (f + 0.5) + 1) for term, f in df.items()}

    def __call__(self, query: str) -> list[int]:
        terms = [t for t in dict.fromkeys(_tokens(query)) if t in self.idf]
        scored = []
        for pk, counts, length in self.docs:
            score = 0.0
            for term in terms:
                tf = counts.get(term, 0)
                if tf:
                    norm = tf + self.k1 * (1 - self.b + self.b * length / self.average)
                    score += self.idf[term] * tf * (self.k1 + 1) / norm
            if score > 0:
                scored.append((score, pk))
        scored.sort(key=lambda pair: -pair[0])
        return [pk for _, pk in scored[: DEPTH * 2]]


def _tokens(text: str) -> list[str]:
    from conversations.knowledge.ranking import _WORD, STOPWORDS

    return [w for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class Memoised:
    """An embedder that remembers each text's vector, so rankers and weight grids over
    the same questions embed each question once."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.key = model.key
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.model.embed(missing), strict=True))
        return np.vstack([self.vectors[t] for t in texts])


@contextmanager
def fusion_weights(weights: tuple[float, float]) -> Iterator[None]:
    previous = selectors.FUSION_WEIGHTS
    selectors.FUSION_WEIGHTS = weights
    try:
        yield
    finally:
        selectors.FUSION_WEIGHTS = previous


@contextmanager
def offline_model(model: Any) -> Iterator[None]:
    """Make "offline" semantic ranking use `model` for the duration."""
    previous = semantic._offline
    semantic._offline = model
    try:
        yield
    finally:
        semantic._offline = previous
