"""App config for the staff console (its own label, models and migrations)."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "conversations.console"
    label = "console"
    verbose_name = "Staff console"
    default_auto_field = "django.db.models.BigAutoField"
