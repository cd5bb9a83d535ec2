"""The file source: Assistants API JSON exports and Chat Completions JSONL histories.

Paths may be files or directories (their `.json` and `.jsonl` files, sorted). Each file's
format is recognised from its content:
- an Assistants export holds spec-shaped objects (`assistant`, `thread`,
  `thread.message`, `thread.run.step`, or `list` pages of them), as one JSON document
  or one object per JSONL line; messages are grouped by `thread_id` across files;
- anything else in a `.jsonl` file is read as Chat Completions messages keyed by
  conversation (see `chat_format`).
A line that is not valid JSON, nested deeper than `MAX_JSON_DEPTH`, or not a usable
object, is reported with its file and line number and skipped; the rest of the file still
imports.

Chat histories are read in two passes so memory stays proportional to the number of
conversations, not messages: the first pass records where each conversation's lines
are, the second reads one conversation at a time.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from conversations.importers.assistants_format import ascending, thread_fill
from conversations.importers.chat_format import ChatThreadBuilder, conversation_key
from conversations.importers.models import ImportSource
from conversations.importers.records import Customer, Problem, ThreadRecord, from_timestamp

ASSISTANT_OBJECTS = frozenset({"assistant", "thread", "thread.message", "thread.run.step", "list"})

ThreadLoader = Callable[[], tuple[ThreadRecord, list[Problem]]]


@dataclass
class FileContents:
    assistants: list[dict[str, Any]] = field(default_factory=list)
    threads: list[tuple[str, str, ThreadLoader]] = field(default_factory=list)  # (source, id, loader)
    problems: list[Problem] = field(default_factory=list)


# Deeper than any real export; a hostile line could otherwise exhaust the recursion
# limit in the JSON decoder (RecursionError) or in whatever walks the value later.
MAX_JSON_DEPTH = 100


def _loads(raw: bytes | str) -> Any:
    """`json.loads`, with nesting deeper than `MAX_JSON_DEPTH` a `ValueError`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
                stack.append((child, depth + 1))
    return value


def expand_paths(paths: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".json", ".jsonl") and p.is_file()))
        else:
            found.append(path)
    return found


class _AssistantsExport:
    """Spec-shaped objects collected from every export file, grouped by thread."""

    def __init__(self) -> None:
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.steps: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        self.origins: dict[str, str] = {}

    def add(self, obj: Any, file: str, line: int | None, problems: list[Problem]) -> None:
        kind = obj.get("object") if isinstance(obj, dict) else None
        if kind == "list":
            for entry in obj.get("data") or []:
                self.add(entry, file, line, problems)
            return
        ident = obj.get("id") if isinstance(obj, dict) else None
        if kind not in ASSISTANT_OBJECTS or not isinstance(ident, str) or not ident:
            problems.append(Problem("line", str(ident or "?"), "not an Assistants API object with an id", line, file))
            return
        if kind == "assistant":
            self.assistants[ident] = obj
            return
        thread_id = ident if kind == "thread" else obj.get("thread_id")
        if not isinstance(thread_id, str) or not thread_id or len(thread_id) > 255:
            problems.append(Problem("line", ident, f"{kind} without a usable thread_id", line, file))
            return
        self.origins.setdefault(thread_id, file)
        if kind == "thread":
            self.threads[thread_id] = obj
        elif kind == "thread.message":
            if not isinstance(obj.get("content", []), list):
                problems.append(Problem("line", ident, "message content is not a list", line, file))
                return
            self.messages[thread_id].append(obj)
        else:
            self.steps[thread_id][str(obj.get("run_id") or "")].append(obj)

    def loader(self, thread_id: str) -> ThreadLoader:
        def load() -> tuple[ThreadRecord, list[Problem]]:
            thread = self.threads.get(thread_id) or {}
            record = ThreadRecord(
                source=ImportSource.ASSISTANTS,
                external_id=thread_id,
                metadata=dict(thread.get("metadata") or {}),
                origin=self.origins.get(thread_id, ""),
            )
            problems: list[Problem] = []
            try:
                record.created_at = from_timestamp(thread.get("created_at"))
                thread_fill(record, ascending(self.messages.get(thread_id, [])), self.steps.get(thread_id))
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                problems.append(Problem("thread", thread_id, f"malformed export: {exc}", None, record.origin))
                record.items.clear()
            return record, problems

        return load


class _ChatIndex:
    """Where each conversation's lines are: key -> [(file index, byte offset, line number)]."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.lines: dict[str, list[tuple[int, int, int]]] = {}

    def add_file(self, path: Path, problems: list[Problem]) -> None:
        index = len(self.files)
        self.files.append(path)
        offset = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                start, offset = offset, offset + len(raw)
                if not raw.strip():
                    continue
                try:
                    line = _loads(raw)
                    if not isinstance(line, dict):
                        raise ValueError("a line must be a JSON object")
                    key = conversation_key(line)
                    if "messages" in line and not isinstance(line["messages"], list):
                        raise ValueError("messages must be a list")
                except json.JSONDecodeError as exc:
                    problems.append(Problem("line", "?", _json_reason(exc), number, path.name))
                    continue
                except ValueError as exc:  # also invalid UTF-8
                    reason = _json_reason(exc) if isinstance(exc, UnicodeDecodeError) else str(exc)
                    problems.append(Problem("line", "?", reason, number, path.name))
                    continue
                self.lines.setdefault(key, []).append((index, start, number))

    def loader(self, key: str, handles: dict[int, BinaryIO]) -> ThreadLoader:
        def load() -> tuple[ThreadRecord, list[Problem]]:
            record = ThreadRecord(source=ImportSource.CHAT, external_id=key)
            builder = ChatThreadBuilder(record)
            problems: list[Problem] = []
            origins: list[str] = []
            for file_index, offset, number in self.lines[key]:
                handle = handles.get(file_index)
                if handle is None:
                    handle = handles[file_index] = self.files[file_index].open("rb")
                handle.seek(offset)
                line = _loads(handle.readline())
                name = self.files[file_index].name
                if name not in origins:
                    origins.append(name)
                _customer(record, line)
                if isinstance(line.get("messages"), list):
                    if isinstance(line.get("metadata"), dict):
                        record.metadata.update(line["metadata"])
                    messages = list(enumerate(line["messages"]))
                else:
                    if isinstance(line.get("conversation_metadata"), dict):
                        record.metadata.update(line["conversation_metadata"])
                    messages = [(None, line["message"] if isinstance(line.get("message"), dict) else line)]
                for position, message in messages:
                    try:
                        builder.add(message)
                    except (ValueError, TypeError, AttributeError) as exc:
                        where = f"messages[{position}]: " if position is not None else ""
                        problems.append(Problem("line", key, f"{where}{exc}", number, name))
            record.origin = ", ".join(origins)
            if record.items:
                record.created_at = next((i.created_at for i in record.items if i.created_at), None)
            return builder.finish(), problems

        return load


def _customer(record: ThreadRecord, line: dict[str, Any]) -> None:
    customer_id = line.get("customer_id")
    if record.customer is None and isinstance(customer_id, str | int) and str(customer_id):
        record.customer = Customer(
            customer_id=str(customer_id)[:255],
            email=str(line.get("customer_email") or "")[:254],
            name=str(line.get("customer_name") or "")[:200],
        )


def _first_object(path: Path) -> Any:
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                try:
                    return _loads(raw)
                except ValueError:
                    continue
    return None


def files_read(paths: list[str | Path], handles: dict[int, BinaryIO]) -> FileContents:
    """Index every file. Thread loaders read lazily through `handles` (the caller closes
    them when the import is done)."""
    contents = FileContents()
    export = _AssistantsExport()
    chats = _ChatIndex()
    for path in expand_paths(paths):
        if not path.is_file():
            contents.problems.append(Problem("file", str(path), "no such file", None, str(path)))
            continue
        if path.suffix == ".jsonl":
            first = _first_object(path)
            if isinstance(first, dict) and first.get("object") in ASSISTANT_OBJECTS:
                _read_export_lines(path, export, contents.problems)
            else:
                chats.add_file(path, contents.problems)
            continue
        try:
            document = _loads(path.read_bytes())
        except ValueError as exc:
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
            contents.problems.append(Problem("file", path.name, f"invalid JSON: {exc}", line, path.name))
            continue
        for obj in document if isinstance(document, list) else [document]:
            export.add(obj, path.name, None, contents.problems)
    contents.assistants = list(export.assistants.values())
    thread_ids = list(dict.fromkeys([*export.threads, *export.messages]))
    contents.threads = [(ImportSource.ASSISTANTS, tid, export.loader(tid)) for tid in thread_ids]
    contents.threads += [(ImportSource.CHAT, key, chats.loader(key, handles)) for key in chats.lines]
    return contents


def _read_export_lines(path: Path, export: _AssistantsExport, problems: list[Problem]) -> None:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = _loads(raw)
            except ValueError as exc:
                problems.append(Problem("line", "?", _json_reason(exc), number, path.name))
                continue
            export.add(obj, path.name, number, problems)


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    return f"invalid JSON: {exc}"
