"""Staff console registrations (the full console lives in conversations/console/)."""

from django.contrib import admin

from conversations.models import Agent, Conversation

admin.site.register(Agent)
admin.site.register(Conversation)
