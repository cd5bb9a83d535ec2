"""App config for the knowledge base; installs the full-text history retriever."""

from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "conversations.knowledge"
    label = "knowledge"
    verbose_name = "Knowledge base"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from conversations.agent.history import set_default_retriever
        from conversations.knowledge.retriever import FullTextRetriever

        # Every history selection (and items_append's index hook) now uses the same
        # full-text engine as the knowledge base.
        set_default_retriever(FullTextRetriever())
