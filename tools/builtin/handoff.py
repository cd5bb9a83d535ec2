"""`handoff_to_human`: put the conversation in the staff queue and pause the AI."""

from __future__ import annotations

from conversations.models import Conversation
from conversations.services.conversations import conversation_handoff
from tools.registry import ToolContext, tool


@tool(activity="Connecting you with a person...")
def handoff_to_human(context: ToolContext, reason: str) -> str:
    """Hand the conversation to a human support agent. Use it when the customer asks for a
    person, or when you cannot help. After calling it, tell the customer a person will
    reply here.

    Args:
        reason: One sentence for the support team on why the customer needs a person.
    """
    conversation = Conversation.objects.get(pk=context.conversation_id)
    conversation_handoff(conversation=conversation, reason=reason, stop_running=False)
    return "The conversation is now in the human support queue. A person will reply here."
