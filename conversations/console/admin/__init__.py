"""The console's admin registrations: conversations, turns (audit and replay), staff
actions and agents. Importing this package registers them with the admin site."""

from conversations.console.admin import agent, conversation, turn  # noqa: F401
