"""Full-text indexes for passages and conversation items, per database vendor.

SQLite: FTS5 tables (porter stemmer) plus triggers that drop or rewrite an index row
when its source row is deleted or edited; existing rows are indexed once here.
PostgreSQL: GIN indexes on the tsvector expressions the queries use (kept current by
PostgreSQL itself). The expressions must match conversations.knowledge.search.
Other vendors get nothing and fall back to keyword matching.
"""

from django.db import migrations

KINDS = "('user', 'assistant', 'function_call', 'function_output', 'staff')"

SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE knowledge_passage_fts USING fts5("
    "title, heading, body, tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_passage_fts_delete AFTER DELETE ON knowledge_passage BEGIN "
    "DELETE FROM knowledge_passage_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER knowledge_passage_fts_update AFTER UPDATE OF title, heading, text "
    "ON knowledge_passage BEGIN "
    "UPDATE knowledge_passage_fts SET title = new.title, heading = new.heading, body = new.text "
    "WHERE rowid = old.id; END",
    "CREATE VIRTUAL TABLE knowledge_message_fts USING fts5("
    "body, conv, seq UNINDEXED, tokenize = 'porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER knowledge_message_fts_delete AFTER DELETE ON conversations_message BEGIN "
    "DELETE FROM knowledge_message_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER knowledge_message_fts_update AFTER UPDATE OF text, tool_arguments, kind "
    "ON conversations_message BEGIN "
    "DELETE FROM knowledge_message_fts WHERE rowid = old.id; "
    "INSERT INTO knowledge_message_fts(rowid, body, conv, seq) "
    "SELECT new.id, substr(new.text || ' ' || new.tool_arguments, 1, 20000), "
    f"'c' || new.conversation_id, new.seq WHERE new.kind IN {KINDS}; END",
    "INSERT INTO knowledge_message_fts(rowid, body, conv, seq) "
    "SELECT id, substr(text || ' ' || tool_arguments, 1, 20000), 'c' || conversation_id, seq "
    f"FROM conversations_message WHERE kind IN {KINDS}",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS knowledge_message_fts_update",
    "DROP TRIGGER IF EXISTS knowledge_message_fts_delete",
    "DROP TABLE IF EXISTS knowledge_message_fts",
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_update",
    "DROP TRIGGER IF EXISTS knowledge_passage_fts_delete",
    "DROP TABLE IF EXISTS knowledge_passage_fts",
]
POSTGRES_CREATE = [
    "CREATE INDEX IF NOT EXISTS knowledge_passage_tsv ON knowledge_passage USING GIN ("
    "(setweight(to_tsvector('english'::regconfig, title || ' ' || heading), 'A') || "
    "setweight(to_tsvector('english'::regconfig, text), 'B')))",
    "CREATE INDEX IF NOT EXISTS knowledge_message_tsv ON conversations_message USING GIN ("
    "to_tsvector('english'::regconfig, text || ' ' || tool_arguments))",
]
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS knowledge_message_tsv",
    "DROP INDEX IF EXISTS knowledge_passage_tsv",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0001_initial"),
        ("conversations", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        ),
    ]
