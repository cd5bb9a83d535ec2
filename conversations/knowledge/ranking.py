"""The retrieval core shared by the knowledge base and the history retriever: which
words of user text are searched (`query_words`, `search_terms`, `rare_terms`) and how
rankings are combined (`fuse`, reciprocal-rank fusion). Pure functions: no database,
no model; the engines (`search.py`) supply document frequencies.

Choosing terms by rarity. A long message ("I was charged $49.99 twice, call me on
+44 7700 900123 about order NW-55210, I need a refund on my card") names its subject in
a few words that are rare in the corpus; words found in a large share of passages
("order", "help", "account") match almost everything and only dilute bm25. So, given
each word's document frequency in the searched collection, `rare_terms`:
- drops words absent from the collection (they cannot match, and crowd out nothing);
- keeps a word with digits only when it is rare, in at most `NUMBER_SHARE` of the
  passages (at least one): an order or error number that a document names is found,
  while a customer's amount, date or phone number ("30", "2025", "49") does not pull
  in every passage that mentions thirty days;
- drops words in more than `COMMON_SHARE` of the passages, unless that would leave
  fewer than `MIN_TERMS` (then the least common of them are kept), and only in a
  collection of at least `MIN_COLLECTION` passages (shares mean nothing in a tiny one);
- keeps every remaining word up to `MAX_QUERY_TERMS` (the rarest, when more), in the
  message's order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_TERMS = 16  # `search_terms` without frequencies (history retrieval)
MAX_TERM_CHARS = 48
MAX_QUERY_TERMS = 64  # bounds the cost of a pasted essay
COMMON_SHARE = 0.2
NUMBER_SHARE = 0.01  # a number is kept only when this rare (an order or error number)
MIN_TERMS = 3
MIN_COLLECTION = 40
RRF_K = 60

_WORD = re.compile(r"[^\W_]+")
_STOPWORD_TEXT = """a about above after again against all am an and any are aren as at be because been
    before being below between both but by can cannot could did didn do does doesn doing don
    down during each few for from further had has have having he her here hers herself him
    himself his how i if in into is isn it its itself just let me more most my myself no nor
    not now of off on once only or other ought our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they
    this those through to too under until up very was wasn we were what when where which
    while who whom why will with won would you your yours yourself yourselves near hi hello
    hey please thanks thank ok okay yes also get got can't i'm i've i'd it's s t ll ve re m d
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def query_words(text: str) -> list[str]:
    """The searchable words of user text, in order: lower-cased runs of letters and
    digits, no stop words, no single letters, no duplicates."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(text.lower()):
        word = match.group(0)[:MAX_TERM_CHARS]
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        seen.setdefault(word, None)
    return list(seen)


def search_terms(text: str, limit: int = MAX_TERMS) -> list[str]:
    """`query_words`, at most `limit` of them: when there are more, the most specific
    are kept (words with digits, then longer words), in their original order. For
    collections without document frequencies (conversation history)."""
    words = query_words(text)
    if len(words) <= limit:
        return words
    keep = set(sorted(words, key=lambda w: (not any(c.isdigit() for c in w), -len(w)))[:limit])
    return [w for w in words if w in keep]


def rare_terms(
    words: list[str],
    frequencies: Mapping[str, int],
    total: int,
    *,
    common_share: float = COMMON_SHARE,
    number_share: float = NUMBER_SHARE,
    min_terms: int = MIN_TERMS,
    limit: int = MAX_QUERY_TERMS,
) -> list[str]:
    """The words worth searching for, by their document frequency in a collection of
    `total` passages (`frequencies[word]`, 0 or missing when absent): see the module
    docstring. Returns them in the message's order."""
    present = [
        w for w in words
        if frequencies.get(w, 0) > 0
        and (not any(c.isdigit() for c in w) or frequencies[w] <= max(1, number_share * total))
    ]
    by_rarity = sorted(present, key=lambda w: frequencies[w])  # stable: ties keep message order
    if total >= MIN_COLLECTION:
        rare = [w for w in by_rarity if frequencies[w] <= common_share * total]
        keep = by_rarity[: max(len(rare), min(min_terms, len(by_rarity)))]
    else:
        keep = by_rarity
    chosen = set(keep[:limit])
    return [w for w in present if w in chosen]


def fuse(
    rankings: Iterable[list[tuple[int, float]]],
    limit: int,
    *,
    k: int = RRF_K,
    weights: Iterable[float] | None = None,
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each ranking adds weight / (k + rank) to an item's
    score (weight 1 unless given); best first, at most `limit`."""
    rankings = list(rankings)
    factors = list(weights) if weights is not None else [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, factors, strict=True):
        for rank, (pk, _) in enumerate(ranking, start=1):
            scores[pk] = scores.get(pk, 0.0) + weight / (k + rank)
    ordered = sorted(scores.items(), key=lambda pair: -pair[1])[:limit]
    return [(pk, round(score, 6)) for pk, score in ordered]
