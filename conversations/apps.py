"""App config for the conversation domain; wires the layers together at start-up."""

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The services reach the engine only through this port (they sit below it).
        from conversations.agent.engine import engine
        from conversations.services.engine_port import engine_port_register

        engine_port_register(engine)
