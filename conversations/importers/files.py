"""The file source: Assistants API JSON exports, vector-store files, and Chat Completions
JSONL histories.

Paths may be files or directories (their `.json`, `.jsonl`, `.ndjson` files and
knowledge files, in sorted path order); every file is reported by its path relative to
the directory given. Each file's format is recognised from its content:
- an Assistants export holds spec-shaped objects (`assistant`, `thread` - possibly with
  nested `messages` -, `thread.message`, `thread.run`, `thread.run.step`, `file`,
  `vector_store.file`, or `list` pages of them), as one JSON document or one object per
  line; messages are grouped by `thread_id` across files and kept in the segments (pages,
  or one file's loose objects) they were listed in, so `messages_ordered` can decide
  their order from the data, never from file names;
- the same id read twice with different content is a `Conflict`: the copy read last
  wins, whole (a completed message beats a copy still in progress);
- a `.pdf`/`.md`/`.txt`/`.html` file whose file id is known (its name starts with it,
  or a `file` object names it) is a vector-store file for the knowledge base;
- anything else in a line-per-object file is read as Chat Completions messages keyed by
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
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from conversations.importers.assistants_format import Segment, messages_ordered, thread_fill
from conversations.importers.chat_format import ChatThreadBuilder, conversation_key
from conversations.importers.models import ImportSource
from conversations.importers.records import Conflict, Customer, Problem, ThreadRecord, from_timestamp

ASSISTANT_OBJECTS = frozenset(
    {"assistant", "thread", "thread.message", "thread.run", "thread.run.step", "list", "file",
     "vector_store.file"}
)
KNOWLEDGE_SUFFIXES = (".pdf", ".md", ".markdown", ".txt", ".html", ".htm")
EXPORT_SUFFIXES = (".json", ".jsonl", ".ndjson", *KNOWLEDGE_SUFFIXES)
_FILE_ID = re.compile(r"^(file-[A-Za-z0-9_]+?)(?=$|[.\s]|--|__)")
LINE_SUFFIXES = (".jsonl", ".ndjson")
CONFLICT_RULE = (
    "the copy read last wins, whole (files are read in path order); a completed message "
    "beats a copy still in progress"
)

ThreadLoader = Callable[[], tuple[ThreadRecord, list[Problem]]]


@dataclass
class FileContents:
    assistants: list[dict[str, Any]] = field(default_factory=list)
    threads: list[tuple[str, str, ThreadLoader]] = field(default_factory=list)  # (source, id, loader)
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    files: list[KnowledgeFile] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)


# Deeper than any real export; a hostile line could otherwise exhaust the recursion
# limit in the JSON decoder (RecursionError) or in whatever walks the value later.
MAX_JSON_DEPTH = 100


def _loads(raw: bytes | str) -> Any:
    """`json.loads`, with nesting deeper than `MAX_JSON_DEPTH` a `ValueError`."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    opened = raw.count(b"{") + raw.count(b"[") if isinstance(raw, bytes) else raw.count("{") + raw.count("[")
    if opened <= MAX_JSON_DEPTH:
        return value  # too few brackets to nest that deep: skip the walk (imports read many lines)
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


@dataclass(frozen=True)
class KnowledgeFile:
    """An exported vector-store file for the knowledge base, under its original id."""

    path: Path
    name: str  # relative to the import root
    file_id: str
    vector_store_ids: tuple[str, ...] = ()


def expand_paths(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """Every file to read, with the name it is reported by: its path relative to the
    directory given, or its own name for a file given directly."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.suffix in EXPORT_SUFFIXES and p.is_file()):
                found.append((child, child.relative_to(path).as_posix()))
        else:
            found.append((path, path.name))
    return found


@dataclass
class _Page:
    """One `list` page being read: its `has_more`, and a segment per thread in it."""

    has_more: bool | None
    segments: dict[str, Segment] = field(default_factory=dict)


@dataclass
class _Version:
    obj: dict[str, Any]
    origin: str


class _AssistantsExport:
    """Spec-shaped objects collected from every export file, grouped by thread. Messages
    are kept in the segments (pages, or one file's loose objects) they were listed in,
    so their order can be decided from the data (`messages_ordered`)."""

    def __init__(self) -> None:
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, _Version] = {}
        self.messages: dict[str, _Version] = {}  # message id -> the copy that won
        self.segments: dict[str, list[Segment]] = defaultdict(list)
        self._loose: dict[tuple[str, str], Segment] = {}
        self.runs: dict[str, dict[str, _Version]] = defaultdict(dict)
        self.steps: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        self.origins: dict[str, list[str]] = defaultdict(list)
        self.conflicts: dict[tuple[str, str], Conflict] = {}
        self._read = 0
        self.file_ids: dict[str, str] = {}  # file name -> file id, from `file` objects
        self.vector_stores: dict[str, list[str]] = defaultdict(list)  # file id -> vector store ids

    def _keep(self, kind: str, ident: str, store: dict[str, _Version], obj: dict[str, Any], origin: str) -> None:
        """Store `obj` under `ident`, reporting a different copy seen before."""
        old = store.get(ident)
        if old is None or old.obj == obj:
            store[ident] = old or _Version(obj, origin)
            return
        new = _Version(obj, origin)
        winner = new
        if kind == "message" and obj.get("status") == "in_progress" and old.obj.get("status") != "in_progress":
            winner = old
        store[ident] = winner
        seen = self.conflicts.get((kind, ident))
        origins = tuple(dict.fromkeys([*(seen.origins if seen else (old.origin,)), origin]))
        self.conflicts[(kind, ident)] = Conflict(kind, ident, origins, winner.origin, CONFLICT_RULE)

    def _segment(self, thread_id: str, origin: str, has_more: bool | None, page: bool) -> Segment:
        if not page and (thread_id, origin) in self._loose:
            return self._loose[(thread_id, origin)]
        self._read += 1
        segment = Segment([], origin, self._read, has_more)
        self.segments[thread_id].append(segment)
        if not page:
            self._loose[(thread_id, origin)] = segment
        return segment

    def _thread_of(self, obj: dict[str, Any], ident: str, kind: str, line: int | None, file: str,
                   problems: list[Problem], default: str = "") -> str | None:
        thread_id = ident if kind == "thread" else (obj.get("thread_id") or default)
        if not isinstance(thread_id, str) or not thread_id or len(thread_id) > 255:
            problems.append(Problem("line", ident, f"{kind} without a usable thread_id", line, file))
            return None
        if file not in self.origins[thread_id]:
            self.origins[thread_id].append(file)
        return thread_id

    def add(self, obj: Any, file: str, line: int | None, problems: list[Problem],
            page: _Page | None = None, thread_hint: str = "") -> None:
        kind = obj.get("object") if isinstance(obj, dict) else None
        if kind == "list":
            listing = _Page(obj.get("has_more") if isinstance(obj.get("has_more"), bool) else None)
            for entry in obj.get("data") or []:
                self.add(entry, file, line, problems, page=listing, thread_hint=thread_hint)
            return
        ident = obj.get("id") if isinstance(obj, dict) else None
        if kind not in ASSISTANT_OBJECTS or not isinstance(ident, str) or not ident:
            problems.append(Problem("line", str(ident or "?"), "not an Assistants API object with an id", line, file))
            return
        if kind == "assistant":
            self.assistants[ident] = obj
            return
        if kind == "file":
            if isinstance(obj.get("filename"), str) and obj["filename"]:
                self.file_ids[PurePath(obj["filename"]).name] = ident
            return
        if kind == "vector_store.file":
            store = obj.get("vector_store_id")
            if isinstance(store, str) and store and store not in self.vector_stores[ident]:
                self.vector_stores[ident].append(store)
            return
        thread_id = self._thread_of(obj, ident, kind, line, file, problems, thread_hint)
        if thread_id is None:
            return
        if kind == "thread":
            nested = obj.get("messages")
            own = {k: v for k, v in obj.items() if k != "messages"}
            self._keep("thread", thread_id, self.threads, own, file)
            if isinstance(nested, list):
                for message in nested:
                    self.add(message, file, line, problems, thread_hint=thread_id)
            elif isinstance(nested, dict):
                self.add(nested, file, line, problems, thread_hint=thread_id)
        elif kind == "thread.message":
            if not isinstance(obj.get("content", []), list):
                problems.append(Problem("line", ident, "message content is not a list", line, file))
                return
            if page is not None:
                segment = page.segments.get(thread_id) or self._segment(thread_id, file, page.has_more, True)
                page.segments[thread_id] = segment
            else:
                segment = self._segment(thread_id, file, None, False)
            if not obj.get("thread_id"):
                obj = {**obj, "thread_id": thread_id}
            segment.messages.append(obj)
            self._keep("message", ident, self.messages, obj, file)
        elif kind == "thread.run":
            self._keep("run", ident, self.runs[thread_id], obj, file)
        else:
            self.steps[thread_id][str(obj.get("run_id") or "")].append(obj)

    def loader(self, thread_id: str) -> ThreadLoader:
        def load() -> tuple[ThreadRecord, list[Problem]]:
            version = self.threads.get(thread_id)
            thread = version.obj if version else {}
            record = ThreadRecord(
                source=ImportSource.ASSISTANTS,
                external_id=thread_id,
                metadata=dict(thread.get("metadata") or {}),
                origin=", ".join(self.origins.get(thread_id, [])),
            )
            problems: list[Problem] = []
            try:
                record.created_at = from_timestamp(thread.get("created_at"))
                segments = [
                    Segment([self.messages[m["id"]].obj for m in s.messages], s.origin, s.index, s.has_more)
                    for s in self.segments.get(thread_id, [])
                ]
                messages, record.order_inferred, undated = messages_ordered(segments)
                if undated:
                    record.notes["messages without created_at dated from their neighbour"] += undated
                runs = [v.obj for v in self.runs.get(thread_id, {}).values()]
                thread_fill(record, messages, self.steps.get(thread_id), runs)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                problems.append(Problem("thread", thread_id, f"malformed export: {exc}", None, record.origin))
                record.items.clear()
                record.runs.clear()
            return record, problems

        return load


class _ChatIndex:
    """Where each conversation's lines are: key -> [(file index, byte offset, line number)]."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.names: list[str] = []
        self.lines: dict[str, list[tuple[int, int, int]]] = {}

    def add_file(self, path: Path, name: str, problems: list[Problem]) -> None:
        index = len(self.files)
        self.files.append(path)
        self.names.append(name)
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
                    problems.append(Problem("line", "?", _json_reason(exc), number, name))
                    continue
                except ValueError as exc:  # also invalid UTF-8
                    reason = _json_reason(exc) if isinstance(exc, UnicodeDecodeError) else str(exc)
                    problems.append(Problem("line", "?", reason, number, name))
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
                name = self.names[file_index]
                if name not in origins:
                    origins.append(name)
                _customer(record, line)
                if isinstance(line.get("messages"), list):
                    if isinstance(line.get("metadata"), dict):
                        record.metadata.update(line["metadata"])
                    messages: list[tuple[int | None, Any]] = list(enumerate(line["messages"]))
                else:
                    if isinstance(line.get("conversation_metadata"), dict):
                        record.metadata.update(line["conversation_metadata"])
                    messages = [(None, line["message"] if isinstance(line.get("message"), dict) else line)]
                for position, message in messages:
                    builder.where = (name, number)
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
    documents: list[tuple[Path, str]] = []
    for path, name in expand_paths(paths):
        if not path.is_file():
            contents.problems.append(Problem("file", str(path), "no such file", None, str(path)))
            continue
        if path.suffix.lower() in KNOWLEDGE_SUFFIXES:
            documents.append((path, name))
            continue
        if path.suffix in LINE_SUFFIXES:
            first = _first_object(path)
            if isinstance(first, dict) and first.get("object") in ASSISTANT_OBJECTS:
                _read_export_lines(path, name, export, contents.problems)
            else:
                chats.add_file(path, name, contents.problems)
            continue
        try:
            document = _loads(path.read_bytes())
        except ValueError as exc:
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
            contents.problems.append(Problem("file", name, f"invalid JSON: {exc}", line, name))
            continue
        for obj in document if isinstance(document, list) else [document]:
            export.add(obj, name, None, contents.problems)
    contents.assistants = list(export.assistants.values())
    contents.conflicts = list(export.conflicts.values())
    for path, name in documents:
        match = _FILE_ID.match(path.name)
        file_id = export.file_ids.get(path.name) or (match.group(1) if match else "")
        if not file_id:
            contents.notes["files with no file id (not named file-..., not in a file object) not imported"] += 1
            continue
        contents.files.append(KnowledgeFile(path, name, file_id, tuple(export.vector_stores.get(file_id, ()))))
    thread_ids = list(dict.fromkeys([*export.threads, *export.segments]))
    contents.threads = [(ImportSource.ASSISTANTS, tid, export.loader(tid)) for tid in thread_ids]
    contents.threads += [(ImportSource.CHAT, key, chats.loader(key, handles)) for key in chats.lines]
    return contents


def _read_export_lines(path: Path, name: str, export: _AssistantsExport, problems: list[Problem]) -> None:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                obj = _loads(raw)
            except ValueError as exc:
                problems.append(Problem("line", "?", _json_reason(exc), number, name))
                continue
            export.add(obj, name, number, problems)


def _json_reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    return f"invalid JSON: {exc}"
