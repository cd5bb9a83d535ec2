"""`search_knowledge_base`: the best help-article passages for a question, with the
document title and ids the answer can cite (the replacement for Assistants' file_search).

The knowledge app's own tool: `KnowledgeConfig.ready` imports this module, which
registers it, so the tool registry (a layer below) never imports the knowledge app."""

from __future__ import annotations

from typing import Any

from conversations.knowledge.selectors import knowledge_search
from tools.registry import ToolContext, tool


@tool(activity="Searching our help articles...")
def search_knowledge_base(context: ToolContext, query: str) -> dict[str, Any]:
    """Search the company's help articles (shipping, returns, payments, accounts and
    more) and return the most relevant passages, best first. Answer from these passages
    and name the article you used; if none fits, say you could not find it.

    Args:
        query: The customer's question or the key words to look for.
    """
    return {
        "results": [
            {
                "document_id": hit.document_id,
                "title": hit.title,
                "passage_id": hit.passage_id,
                "text": hit.text,
                "score": hit.score,
            }
            for hit in knowledge_search(query=query)
        ]
    }
