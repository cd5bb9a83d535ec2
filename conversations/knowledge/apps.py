"""App config for the knowledge base; installs the full-text history retriever and
registers the `search_knowledge_base` tool."""

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "conversations.knowledge"
    label = "knowledge"
    verbose_name = "Knowledge base"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations.knowledge.history_semantic import HybridHistoryRetriever
        from conversations.retrieval import set_default_retriever

        # Every history selection (and items_append's index hook) now uses the same
        # full-text engine as the knowledge base, fused with item embeddings when
        # HISTORY_EMBEDDINGS is on (history_semantic).
        set_default_retriever(HybridHistoryRetriever())
        from conversations.knowledge import tool  # noqa: F401  (registers search_knowledge_base)
