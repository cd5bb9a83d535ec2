"""Structured logging: who a log line is about, and a JSON formatter.

Three context variables say what a line belongs to: the HTTP request (`request_id`, set by
`RequestIdMiddleware`), the conversation and the turn (set by the turn runner through
`bind_log_context`). Context variables follow the work: asyncio tasks copy them, and the
engine's database threads receive them through `asgiref`'s `SyncToAsync`, so a line
logged from a service called by a turn carries that turn's ids.

`ContextFilter` copies them onto every record; `JsonFormatter` (enabled with
`LOG_FORMAT=json`) writes one JSON object per line. Info-level lines written by the
platform carry ids, statuses and numbers only, never message text or secrets; only an
exception's traceback (error level) can contain data.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
conversation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "conversation_id", default=None
)
turn_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("turn_id", default=None)

_CONTEXT_FIELDS = (
    ("request_id", request_id_var),
    ("conversation_id", conversation_id_var),
    ("turn_id", turn_id_var),
)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName"}


def bind_log_context(*, conversation_id: Any = None, turn_id: Any = None) -> None:
    """Attach the conversation and turn ids to every line logged from the current
    context (a turn's task, and the database jobs it starts) from now on."""
    if conversation_id is not None:
        conversation_id_var.set(str(conversation_id))
    if turn_id is not None:
        turn_id_var.set(str(turn_id))


class ContextFilter(logging.Filter):
    """Copies the context ids onto the record, unless the call passed them in `extra`."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context ids, any
    plain `extra=` fields (strings, numbers, booleans), and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in _CONTEXT_FIELDS:
            value = getattr(record, name, None) or var.get()
            if value:
                data[name] = value
        for key, value in vars(record).items():
            # Plain values only: objects passed as extras (Django passes the request)
            # would be written as their repr, query strings and all.
            if key not in _STANDARD_ATTRS and key not in data and isinstance(value, str | int | float | bool):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)
