"""The console's admin registrations: conversations, turns (audit and replay), staff
actions, agents and staff profiles. Importing this package registers them with the admin site."""

from conversations.console.admin import agent, conversation, staff_profile, turn  # noqa: F401
