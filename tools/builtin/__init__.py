"""The built-in tools. Importing this package registers them."""

from tools.builtin import handoff, orders  # noqa: F401
