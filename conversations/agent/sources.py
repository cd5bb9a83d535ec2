"""Which knowledge-base passages an answer drew on: its `metadata.sources`.

After a turn's tool rounds, the passages that `search_knowledge_base` returned are
attached to the turn's final assistant item, so every door can cite them without
re-running the search. Shape of `Message.metadata["sources"]` (a list, best first):

    {"document_id": int, "title": str, "passage_id": int, "score": float, "snippet": str}

Kept: the best passage of each search, and any other passage scoring at least half as
well as it (weaker ones were shown to the model but are not cited), at most
`MAX_SOURCES`, each passage once.
"""

from __future__ import annotations

import json
from typing import Any

from conversations.models.message import MessageKind

KNOWLEDGE_TOOL = "search_knowledge_base"
MAX_SOURCES = 3
SNIPPET_CHARS = 240
RELATIVE_SCORE = 0.5


def _results(output: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(output)
    except (TypeError, ValueError):
        return []
    results = data.get("results") if isinstance(data, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def answer_sources(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sources cited by a turn whose new items are `items` (runner item dicts)."""
    sources: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for item in items:
        if item.get("kind") != MessageKind.FUNCTION_OUTPUT or item.get("tool_name") != KNOWLEDGE_TOOL:
            continue
        if not (item.get("metadata") or {}).get("ok", True):
            continue
        results = _results(item.get("text", ""))
        if not results:
            continue
        top = float(results[0].get("score") or 0)
        for rank, result in enumerate(results):
            score = float(result.get("score") or 0)
            if rank and (top <= 0 or score < top * RELATIVE_SCORE):
                continue
            if result.get("passage_id") in seen:
                continue
            seen.add(result.get("passage_id"))
            sources.append({
                "document_id": result.get("document_id"),
                "title": str(result.get("title", "")),
                "passage_id": result.get("passage_id"),
                "score": score,
                "snippet": " ".join(str(result.get("text", "")).split())[:SNIPPET_CHARS],
            })
    return sources[:MAX_SOURCES]


def attach_sources(items: list[dict[str, Any]]) -> None:
    """Put the turn's sources into its last assistant item's metadata (in place)."""
    sources = answer_sources(items)
    answers = [item for item in items if item.get("kind") == MessageKind.ASSISTANT]
    if sources and answers:
        answers[-1]["metadata"] = {**(answers[-1].get("metadata") or {}), "sources": sources}
