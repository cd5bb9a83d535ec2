"""The importers app: its own label and migrations (the import links)."""

from django.apps import AppConfig


class ImportersConfig(AppConfig):
    name = "conversations.importers"
    label = "importers"
    verbose_name = "Imports"
    default_auto_field = "django.db.models.BigAutoField"
