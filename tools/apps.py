"""App config for the tool registry and the built-in tools (and their demo data)."""

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Tools"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import tools.builtin  # noqa: F401  (registers the built-in tools)
