"""Chat Completions-style messages (`role`, `content`, `tool_calls`, `tool_call_id`) ->
importer items, for home-grown histories kept as JSONL.

Two line shapes are accepted, keyed by `conversation_id` (or `customer_id` when that is
the only key):
  {"conversation_id": "c1", "customer_id": "u1", "role": "user", "content": "hi", "created_at": 1700000000}
  {"conversation_id": "c1", "customer_id": "u1", "messages": [{"role": "user", ...}, ...]}
(a message may also sit under a `"message"` key of its line).

Messages keep their file order. `user` and `assistant` text is kept; image, audio and
file parts become described placeholders. An assistant's `tool_calls` become function
call items and `tool` messages function output items with the same `call_id`; a call id
reused within one conversation is made unique so every output pairs with its own call.
The legacy `function_call` / `function` roles are paired the same way. `system` and
`developer` messages are skipped and counted: the agent's instructions replace them.

Each item's `external_id` is the message's `id` when it has one, else a digest of its
role, content and time plus an occurrence number, so a re-run of the same or a longer
file recognises what it already imported.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

from conversations.importers.records import ItemRecord, Problem, ThreadRecord, from_timestamp
from conversations.models.message import MessageKind

_ROLES = ("user", "assistant", "tool", "function", "system", "developer")
_PART_PLACEHOLDERS = {
    "image_url": "image",
    "input_image": "image",
    "input_audio": "audio",
    "audio": "audio",
    "file": "file",
    "input_file": "file",
}


def conversation_key(line: dict[str, Any]) -> str:
    key = line.get("conversation_id") or line.get("customer_id")
    if key is None or key == "" or isinstance(key, dict | list | bool):
        raise ValueError("needs a conversation_id or customer_id")
    if len(str(key)) > 255:
        raise ValueError("conversation_id is longer than 255 characters")
    return str(key)


def _content_text(content: Any, placeholders: Counter[str]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ValueError("content must be a string or a list of parts")
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
            continue
        if not isinstance(part, dict):
            raise ValueError("content parts must be objects")
        kind = part.get("type", "")
        if kind in ("text", "input_text", "output_text"):
            parts.append(part.get("text") or "")
        elif kind == "refusal":
            parts.append(part.get("refusal") or "")
        else:
            label = _PART_PLACEHOLDERS.get(kind, kind or "unknown")
            placeholders[kind or "unknown"] += 1
            parts.append(f"[{label} not imported]")
    return "\n\n".join(p for p in parts if p)


class ChatThreadBuilder:
    """Accumulates one conversation's messages, in order, into a ThreadRecord."""

    def __init__(self, record: ThreadRecord) -> None:
        self.record = record
        self._seen: Counter[str] = Counter()
        self._call_ids: dict[str, str] = {}  # source call id -> id used here
        self._used_call_ids: Counter[str] = Counter()
        self._legacy_calls: list[tuple[str, str]] = []  # (function name, call id) awaiting output
        self._unanswered: set[str] = set()
        self.where: tuple[str, int | None] = ("", None)  # (file, line) being read, for warnings

    def _external_id(self, message: dict[str, Any]) -> str:
        given = message.get("id")
        if isinstance(given, str | int) and not isinstance(given, bool) and str(given):
            return str(given)[:200]
        digest = hashlib.blake2b(
            json.dumps(
                [message.get("role"), message.get("content"), message.get("tool_calls"),
                 message.get("tool_call_id"), message.get("function_call"),
                 message.get("created_at") or message.get("timestamp")],
                sort_keys=True, default=str,
            ).encode(),
            digest_size=12,
        ).hexdigest()
        self._seen[digest] += 1
        return f"h{digest}.{self._seen[digest]}"

    def _new_call_id(self, source_id: str) -> str:
        self._used_call_ids[source_id] += 1
        count = self._used_call_ids[source_id]
        call_id = source_id if count == 1 else f"{source_id}~{count}"
        self._call_ids[source_id] = call_id
        self._unanswered.add(call_id)
        return call_id[:100]

    def add(self, message: Any) -> None:
        """Add one message; raises ValueError (and adds nothing) when it is malformed."""
        if not isinstance(message, dict):
            raise ValueError("a message must be a JSON object")
        role = message.get("role")
        if role not in _ROLES:
            raise ValueError(f"unknown role {role!r}")
        if role == "tool" and not (isinstance(message.get("tool_call_id"), str) and message["tool_call_id"]):
            raise ValueError("a tool message needs a tool_call_id")
        if role == "assistant":
            _check_calls(message)
        when = from_timestamp(message.get("created_at", message.get("timestamp")))
        placeholders: Counter[str] = Counter()
        text = _content_text(message.get("content"), placeholders)
        record = self.record
        record.messages += 1
        if role in ("system", "developer"):
            record.notes[f"{role} messages skipped (the agent's instructions replace them)"] += 1
            return
        # Valid from here on: only now is state (occurrences, call ids) changed.
        record.placeholders.update(placeholders)
        base = self._external_id(message)
        metadata: dict[str, Any] = message["metadata"] if isinstance(message.get("metadata"), dict) else {}
        items: list[ItemRecord] = []
        if role == "user":
            if text.strip():
                items.append(ItemRecord(MessageKind.USER, base, when, text=text, metadata=metadata))
        elif role == "assistant":
            if not text and message.get("refusal"):
                text = str(message["refusal"])
            if text.strip():
                items.append(ItemRecord(MessageKind.ASSISTANT, base, when, text=text, metadata=metadata))
            items.extend(self._calls(message, base, when))
        elif role == "tool":
            source_id = str(message["tool_call_id"])
            items.append(self._output(self._call_ids.get(source_id, source_id), base, when, text))
        else:  # the legacy "function" role answers the latest open call of that name
            name = str(message.get("name") or "")
            match = next((c for c in reversed(self._legacy_calls) if c[0] == name), None)
            if match:
                self._legacy_calls.remove(match)
            items.append(self._output(match[1] if match else f"legacy-{base}", base, when, text))
        if not items:
            record.notes["empty messages skipped"] += 1
        for item in items:
            item.message_key = base
        record.items.extend(items)

    def _output(self, call_id: str, base: str, when: Any, text: str) -> ItemRecord:
        if call_id in self._unanswered:
            self._unanswered.discard(call_id)
        else:
            self.record.notes["tool outputs without a matching call"] += 1
            file, line = self.where
            self.record.warnings.append(Problem(
                "line", self.record.external_id,
                f"tool output without a matching call (call id {call_id!r}): imported, never sent to the model",
                line, file,
            ))
        return ItemRecord(MessageKind.FUNCTION_OUTPUT, base, when, call_id=call_id[:100], text=text)

    def _calls(self, message: dict[str, Any], base: str, when: Any) -> list[ItemRecord]:
        calls = message.get("tool_calls") or []
        legacy = message.get("function_call")
        # Valid: only now are call ids taken.
        items = [
            _call_item(call["function"], self._new_call_id(call["id"]), f"{base}#call{index}", when)
            for index, call in enumerate(calls)
        ]
        if isinstance(legacy, dict):
            call_id = self._new_call_id(f"legacy-{base}")
            self._legacy_calls.append((str(legacy["name"]), call_id))
            items.append(_call_item(legacy, call_id, f"{base}#call", when))
        return items

    def finish(self) -> ThreadRecord:
        _date_from_neighbours(self.record)
        if self._unanswered:
            self.record.notes["tool calls without an output (kept, never sent to the model)"] += len(
                self._unanswered
            )
        return self.record


def _date_from_neighbours(record: ThreadRecord) -> None:
    """A message without a time takes its previous neighbour's (the next one's, at the
    start), so it sorts where the file put it instead of at the import time."""
    known = next((item.created_at for item in record.items if item.created_at), None)
    if known is None:
        return
    undated: set[str] = set()
    for item in record.items:
        if item.created_at is None:
            item.created_at = known
            undated.add(item.message_key or item.external_id)
        else:
            known = item.created_at
    if undated:
        record.notes["messages without a time dated from their neighbour"] += len(undated)


def _check_calls(message: dict[str, Any]) -> None:
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError("tool_calls must be a list")
    for index, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
            raise ValueError(f"tool_calls[{index}] is not a function call")
        if not isinstance(call.get("id"), str) or not call["id"]:
            raise ValueError(f"tool_calls[{index}] has no id")
        _check_function(call["function"], f"tool_calls[{index}]")
    legacy = message.get("function_call")
    if legacy is not None:
        if not isinstance(legacy, dict):
            raise ValueError("function_call must be an object")
        _check_function(legacy, "function_call")


def _check_function(function: dict[str, Any], where: str) -> None:
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise ValueError(f"{where} needs a function name")


def _call_item(function: dict[str, Any], call_id: str, external_id: str, when: Any) -> ItemRecord:
    arguments = function.get("arguments", "{}")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return ItemRecord(
        MessageKind.FUNCTION_CALL,
        external_id,
        when,
        tool_name=function["name"][:100],
        call_id=call_id,
        arguments=arguments,
    )
