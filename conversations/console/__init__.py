"""The staff console: the Django admin pages where support staff browse, audit, retry,
replay and take over conversations, and configure and try agents.

Everything here is a door. Staff actions call the services in
`conversations.services`; replay (`replay.py`) re-sends a turn's recorded request
through the same provider client without writing to the conversation.
"""
