"""Admin registrations for the conversation domain: the staff console (conversations/console/)."""

from conversations.console import admin as console_admin  # noqa: F401
