"""The conversation domain's tables: agents, conversations, their ordered items, turns
(the audit and retry unit), the record of staff actions, how staff members appear to
customers, and the customer facts."""

from conversations.models.agent import Agent
from conversations.models.conversation import Conversation
from conversations.models.fact import CustomerFact, FactSource
from conversations.models.message import Message
from conversations.models.staff_action import StaffAction
from conversations.models.staff_profile import StaffProfile
from conversations.models.turn import Turn

__all__ = ["Agent", "Conversation", "CustomerFact", "FactSource", "Message", "StaffAction", "StaffProfile", "Turn"]
