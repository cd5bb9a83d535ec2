"""Full-text indexes for passages and conversation items, per database vendor.

SQLite: FTS5 tables (porter stemmer) plus triggers that drop or rewrite an index row
when its source row is deleted or edited; existing rows are indexed once here.
PostgreSQL: a generated tsvector column on passages under a GIN index, and a stored
tsvector per conversation item in knowledge_messageindexentry (rewritten by a trigger
when the item is edited). Column and weights must match conversations.knowledge.search.
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
    # Passages: a stored, generated tsvector column (PostgreSQL fills it on every insert
    # and update; the model does not declare it) under a GIN index.
    "ALTER TABLE knowledge_passage ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, title || ' ' || heading), 'A') || "
    "setweight(to_tsvector('english'::regconfig, text), 'B')) STORED",
    "CREATE INDEX knowledge_passage_tsv ON knowledge_passage USING GIN (search_vector)",
    # Conversation items: rows of knowledge_messageindexentry are inserted by the
    # retriever's index hook and deleted by the foreign key's cascade; an edit of the
    # item rewrites its vector here.
    "CREATE FUNCTION knowledge_message_reindex() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN "
    "DELETE FROM knowledge_messageindexentry WHERE message_id = NEW.id; "
    f"IF NEW.kind IN {KINDS} THEN "
    "INSERT INTO knowledge_messageindexentry (message_id, conversation_id, seq, vector) VALUES "
    "(NEW.id, NEW.conversation_id, NEW.seq, to_tsvector('english'::regconfig, "
    "left(NEW.text || ' ' || NEW.tool_arguments, 20000))); "
    "END IF; RETURN NULL; END $$",
    "CREATE TRIGGER knowledge_message_reindex AFTER UPDATE OF text, tool_arguments, kind "
    "ON conversations_message FOR EACH ROW EXECUTE FUNCTION knowledge_message_reindex()",
    "INSERT INTO knowledge_messageindexentry (message_id, conversation_id, seq, vector) "
    "SELECT id, conversation_id, seq, to_tsvector('english'::regconfig, "
    f"left(text || ' ' || tool_arguments, 20000)) FROM conversations_message WHERE kind IN {KINDS}",
]
POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS knowledge_message_reindex ON conversations_message",
    "DROP FUNCTION IF EXISTS knowledge_message_reindex()",
    "DELETE FROM knowledge_messageindexentry",
    "DROP INDEX IF EXISTS knowledge_passage_tsv",
    "ALTER TABLE knowledge_passage DROP COLUMN IF EXISTS search_vector",
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
