"""The importer's neutral records: what every source produces and the writer consumes.

A source (the Assistants API, an Assistants export, a Chat Completions JSONL) turns its
own shapes into `AgentPlan`s and `ThreadRecord`s made of `ItemRecord`s, or `Problem`s
for what it could not read. Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from conversations.models.conversation import CustomerKind


@dataclass(frozen=True)
class Customer:
    customer_id: str
    kind: str = CustomerKind.USER
    email: str = ""
    name: str = ""
    api_client: str = ""  # the API client (by name) the mapping assigns the conversation to


@dataclass
class ItemRecord:
    """One future `Message` item. `external_id` is stable across re-runs (the source's
    message id, or one derived from it) and is what makes an import idempotent."""

    kind: str
    external_id: str
    created_at: dt.datetime | None = None
    text: str = ""
    tool_name: str = ""
    call_id: str = ""
    arguments: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # The source message this item came from (several items can share one: an
    # assistant's text and its tool calls); empty for run steps, which are not messages.
    message_key: str = ""

    def fields(self) -> dict[str, Any]:
        """The `Message` fields `items_bulk_append` takes. NUL characters, which PostgreSQL
        refuses in text, are dropped."""
        text = self.text.replace("\x00", "") if "\x00" in self.text else self.text
        values: dict[str, Any] = {"kind": self.kind, "text": text, "external_id": self.external_id}
        if self.created_at is not None:
            values["created_at"] = self.created_at
        if self.tool_name:
            values["tool_name"] = self.tool_name
        if self.call_id:
            values["call_id"] = self.call_id
        if self.arguments:
            values["tool_arguments"] = self.arguments.replace("\x00", "")
        if self.metadata:
            values["metadata"] = self.metadata
        return values


@dataclass
class ThreadRecord:
    """One conversation to bring in: an Assistants thread or a chat history."""

    source: str  # an ImportSource value
    external_id: str
    items: list[ItemRecord] = field(default_factory=list)
    messages: int = 0  # source messages the items came from
    customer: Customer | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None
    assistant_id: str = ""
    cursor: str = ""  # last source message id covered (API source)
    placeholders: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)
    origin: str = ""  # file paths relative to the import root, or the API base URL
    runs: list[RunRecord] = field(default_factory=list)
    order_inferred: str = ""  # why the message order was not fully decided by the data
    warnings: list[Problem] = field(default_factory=list)  # imported, but worth a look


@dataclass
class RunRecord:
    """An Assistants `thread.run`: what the assistant did to answer one customer
    message, imported as a finished `Turn` (trigger "imported")."""

    run_id: str
    answers: str  # external id of the customer message it answered
    status: str  # a TurnStatus value
    source_status: str  # the run's own status
    model: str = ""
    instructions: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    error_code: str = ""  # a TurnError value
    error_message: str = ""
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    required_action: dict[str, Any] | None = None
    last_error: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    """The same source id read twice with different content: which copy won and why."""

    kind: str  # "thread", "message", "run", "assistant"
    id: str
    origins: tuple[str, ...]
    kept: str
    rule: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "origins": list(self.origins), "kept": self.kept,
                "rule": self.rule}


@dataclass
class AgentPlan:
    """What an Assistants-API assistant becomes, and what could not come along."""

    assistant_id: str
    name: str
    model: str
    instructions: str
    temperature: float | None
    tools: list[str]
    needs_implementation: list[str] = field(default_factory=list)
    knowledge_base: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """Something a source could not read: reported, never fatal."""

    kind: str  # "thread", "assistant", "line", "file", "mapping"
    id: str
    reason: str
    line: int | None = None
    file: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "id": self.id, "reason": self.reason}
        if self.file:
            out["file"] = self.file
        if self.line is not None:
            out["line"] = self.line
        return out


def from_timestamp(value: Any) -> dt.datetime | None:
    """A Unix timestamp (seconds, as the Assistants API sends) or an ISO 8601 string as
    an aware UTC datetime; None when absent. Raises ValueError when malformed."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    try:
        if isinstance(value, int | float):
            # Milliseconds are common in home-grown stores; seconds this large would be
            # thousands of years away.
            seconds = value / 1000 if value > 100_000_000_000 else value
            return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    except (OverflowError, OSError, ValueError):
        pass
    raise ValueError(f"not a timestamp: {value!r}")
