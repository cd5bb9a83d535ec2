"""The history benchmark's generator keeps its own rules: paraphrase questions share no
content word with their fact, conversations are 200-600 items of real support lengths,
and indirect questions include phrasings the facet patterns were not written against."""

from __future__ import annotations

import statistics

from conversations.agent.tokens import count_tokens, get_encoding
from conversations.knowledge import history_bench, history_semantic


def test_the_generated_set_keeps_its_rules():
    cases = history_bench.generate_all(40, 11)  # raises if a paraphrase shares a word with its fact

    assert all(200 <= len(case.items) <= 620 for case in cases)
    encoding = get_encoding("o200k_base")
    texts = [i["text"] for case in cases for i in case.items if i["kind"] in ("user", "assistant")]
    assert statistics.mean(count_tokens(t, encoding) for t in texts) >= 30
    for case in cases:
        for kind, question, position in case.questions:
            if kind == "paraphrase":
                assert not history_bench.content_words(question) & history_bench.content_words(
                    case.items[position]["text"])
    indirect = [q for case in cases for kind, q, _ in case.questions if kind == "indirect"]
    unseen = [q for q in indirect if q in history_bench.PROMISE_UNSEEN + history_bench.TRIED_UNSEEN]
    assert len(unseen) >= len(indirect) // 3
    # ... and those really are unseen: no facet pattern matches them.
    assert not [q for q in unseen if history_semantic.asks_follow_up(q) or history_semantic.asks_tried(q)]
