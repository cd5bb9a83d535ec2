"""App config for the REST API and its API keys (label `apikeys`)."""

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "conversations.api"
    label = "apikeys"
    verbose_name = "API access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # OpenAPI descriptions of the authentication schemes (registered on import).
        from conversations.api import schema  # noqa: F401
