"""The built-in tools. Importing this package registers them."""

from tools.builtin import handoff, knowledge, orders  # noqa: F401
