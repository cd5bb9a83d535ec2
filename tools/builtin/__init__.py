"""The built-in tools. Importing this package registers them. (Feature apps register
their own: the knowledge app's `search_knowledge_base` is `conversations.knowledge.tool`.)"""

from tools.builtin import handoff, orders  # noqa: F401
