"""What every supported database can store, checked before anything is written.

PostgreSQL refuses NUL characters in text and in `jsonb` (SQLite takes them), and no
database driver can encode an unpaired UTF-16 surrogate, which a JSON body may carry as
an escape (`"\\ud800"`). Refusing both at the service keeps "bad input is a 400" true on
every database and through every door, rather than a 500 on PostgreSQL only.
"""

from __future__ import annotations

from typing import Any

from conversations.errors import InvalidInput


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def json_problem(value: Any) -> str | None:
    """Why a decoded JSON value cannot be stored, or None (keys are checked too)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def clean_metadata(metadata: Any, field: str = "metadata") -> dict[str, Any]:
    """A JSON object every database can store; None becomes {}."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidInput(f"{field} must be a JSON object.", fields={field: "object"})
    problem = json_problem(metadata)
    if problem:
        raise InvalidInput(f"{field} {problem}.", fields={field: problem})
    return metadata
