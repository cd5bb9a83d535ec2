"""The conversation domain's tables: agents, conversations, their ordered items, turns
(the audit and retry unit), the record of staff actions, how staff members appear to
customers, the customer facts, and customers' satisfaction ratings."""

from conversations.models.agent import Agent
from conversations.models.conversation import Conversation
from conversations.models.fact import CustomerFact, FactSource
from conversations.models.message import Message
from conversations.models.rating import CsatRating, Handled
from conversations.models.staff_action import StaffAction
from conversations.models.staff_profile import StaffProfile
from conversations.models.turn import Turn

__all__ = [
    "Agent", "Conversation", "CsatRating", "CustomerFact", "FactSource", "Handled", "Message", "StaffAction", "StaffProfile", "Turn",
]
