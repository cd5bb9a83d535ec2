"""Bringing existing conversations in: Assistants API threads (from a compatible API or
its JSON exports) and home-grown Chat Completions histories, as `Agent`s,
`Conversation`s and `Message` items. See docs/migrating-from-assistants.md."""
