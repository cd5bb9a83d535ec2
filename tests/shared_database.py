"""The test database as a `DATABASE_URL`, so a subprocess (daphne, a management
command) shares it: SQLite's file or PostgreSQL's test database, whichever this run
uses. The subprocess sees committed rows only: use `django_db(transaction=True)`."""

from __future__ import annotations

from pathlib import Path

from django.db import connection


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    if connection.vendor == "postgresql":
        auth = (db.get("USER") or "") + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    raise RuntimeError(f"no database URL for {db['ENGINE']}")
