"""The knowledge base and full-text retrieval: help documents split into passages and
searched by the `search_knowledge_base` tool, and the retriever that picks relevant older
conversation items for the history selector. Both use the database's own full-text
engine (SQLite FTS5 or PostgreSQL text search) behind one interface (`search.py`)."""
