"""Assistants API objects (as the official OpenAPI spec shapes them) -> importer records.

Used by both the API source and the export-file source, so a thread imports the same
whichever way it arrives.

- An `assistant` becomes an `AgentPlan`: name, instructions, model, temperature, and its
  function tools matched by name to the tool registry; unmatched functions are reported
  as needing an implementation, `file_search`/`retrieval` point at the knowledge base,
  `code_interpreter` has no equivalent and is reported.
- A thread's messages are put oldest first from the data (`messages_ordered`: each
  page's direction from its own `created_at`s, positions kept within a second, pages
  placed by time range and `has_more`), then become user/assistant items with their original
  `created_at`. Text is kept; images, attached files and annotations become a
  described placeholder in the text and are counted. Import stops before the first
  message still `in_progress`, so a run that is still writing comes in on a re-run.
- Run steps, when given, become function call/output items, placed where the run made
  them: before the message the run created next, or after the run's last message.
  Only calls that have an output are imported (a call without its output can never be
  sent to the model); the others are counted.
- Runs become `RunRecord`s attached to the customer message they answered
  (`runs_attach`), written as finished turns with trigger "imported".
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from conversations.importers.records import AgentPlan, ItemRecord, RunRecord, ThreadRecord, from_timestamp
from conversations.models.message import MessageKind
from conversations.models.turn import TurnError, TurnStatus

KNOWLEDGE_BASE_TOOL = "search_knowledge_base"
KNOWLEDGE_BASE_POINTER = (
    "file_search: load the files of the assistant's vector stores into the knowledge base "
    "and enable the `search_knowledge_base` tool (docs/migrating-from-assistants.md#file-search)"
)
_ROLES = {"user": MessageKind.USER, "assistant": MessageKind.ASSISTANT}


def assistant_plan(assistant: dict[str, Any], registry_names: set[str]) -> AgentPlan:
    """Map an AssistantObject; raises ValueError when it is not one."""
    if assistant.get("object") != "assistant" or not assistant.get("id"):
        raise ValueError("not an assistant object")
    tools: list[str] = []
    needs: list[str] = []
    knowledge: list[str] = []
    dropped: list[str] = []
    for definition in assistant.get("tools") or []:
        kind = definition.get("type")
        if kind == "function":
            name = (definition.get("function") or {}).get("name", "")
            (tools if name in registry_names else needs).append(name)
        elif kind in ("file_search", "retrieval"):
            stores = ((assistant.get("tool_resources") or {}).get("file_search") or {}).get(
                "vector_store_ids"
            ) or []
            where = f" (vector stores: {', '.join(stores)})" if stores else ""
            knowledge.append(KNOWLEDGE_BASE_POINTER + where)
            if KNOWLEDGE_BASE_TOOL in registry_names and KNOWLEDGE_BASE_TOOL not in tools:
                tools.append(KNOWLEDGE_BASE_TOOL)
        elif kind == "code_interpreter":
            needs.append("code_interpreter (no built-in equivalent; write a function tool)")
        else:
            needs.append(f"{kind} (unknown tool type)")
    if assistant.get("response_format") not in (None, "auto", {"type": "text"}):
        dropped.append("response_format")
    if assistant.get("top_p") not in (None, 1, 1.0):
        dropped.append("top_p")
    if assistant.get("description"):
        dropped.append("description")
    temperature = assistant.get("temperature")
    return AgentPlan(
        assistant_id=assistant["id"],
        name=(assistant.get("name") or assistant["id"])[:120],
        model=(assistant.get("model") or "")[:120],
        instructions=assistant.get("instructions") or "",
        temperature=None if temperature in (None, 1, 1.0) else float(temperature),
        tools=tools,
        needs_implementation=needs,
        knowledge_base=knowledge,
        dropped=dropped,
    )


def _annotated(text: dict[str, Any], placeholders: Counter[str]) -> str:
    value = text.get("value") or ""
    for note in text.get("annotations") or []:
        kind = note.get("type", "annotation")
        if kind == "file_citation":
            label = f"[cited file {(note.get('file_citation') or {}).get('file_id', '?')}]"
        elif kind == "file_path":
            label = f"[generated file {(note.get('file_path') or {}).get('file_id', '?')} not imported]"
        else:
            label = f"[{kind} not imported]"
        placeholders[kind] += 1
        marker = note.get("text") or ""
        value = value.replace(marker, label, 1) if marker and marker in value else f"{value} {label}"
    return value


def _cited_files(message: dict[str, Any]) -> list[str]:
    """The file ids a message's `file_citation` annotations cite, in order, once each."""
    cited: list[str] = []
    for part in message.get("content") or []:
        if part.get("type") != "text":
            continue
        for note in (part.get("text") or {}).get("annotations") or []:
            file_id = (note.get("file_citation") or {}).get("file_id") if note.get("type") == "file_citation" else None
            if isinstance(file_id, str) and file_id and file_id not in cited:
                cited.append(file_id)
    return cited


def message_text(message: dict[str, Any], placeholders: Counter[str]) -> str:
    """A MessageObject's content as text, non-text parts as described placeholders."""
    parts: list[str] = []
    for part in message.get("content") or []:
        kind = part.get("type")
        if kind == "text":
            parts.append(_annotated(part.get("text") or {}, placeholders))
        elif kind == "refusal":
            parts.append(part.get("refusal") or "")
        elif kind == "image_file":
            placeholders["image_file"] += 1
            parts.append(f"[image {(part.get('image_file') or {}).get('file_id', '?')} not imported]")
        elif kind == "image_url":
            placeholders["image_url"] += 1
            url = (part.get("image_url") or {}).get("url", "?")
            parts.append(f"[image {url if len(url) <= 200 else url[:200] + '...'} not imported]")
        else:
            placeholders[str(kind)] += 1
            parts.append(f"[{kind} content not imported]")
    for attachment in message.get("attachments") or []:
        placeholders["attachment"] += 1
        parts.append(f"[attached file {attachment.get('file_id', '?')} not imported]")
    return "\n\n".join(p for p in parts if p)


def _step_items(steps: list[dict[str, Any]], record: ThreadRecord) -> tuple[dict[str, list[ItemRecord]], list[ItemRecord]]:
    """Function call/output items of one run's steps: those to put before a message id,
    and those that come after the run's last message."""
    before: dict[str, list[ItemRecord]] = defaultdict(list)
    pending: list[ItemRecord] = []
    for step in sorted(steps, key=lambda s: s.get("created_at") or 0):
        details = step.get("step_details") or {}
        if details.get("type") == "message_creation":
            message_id = (details.get("message_creation") or {}).get("message_id", "")
            if pending and message_id:
                before[message_id].extend(pending)
                pending = []
            continue
        when = from_timestamp(step.get("completed_at") or step.get("created_at"))
        for call in details.get("tool_calls") or []:
            if call.get("type") != "function":
                record.notes[f"{call.get('type')} tool calls not imported"] += 1
                continue
            function = call.get("function") or {}
            if function.get("output") is None:
                record.notes["function calls without an output not imported"] += 1
                continue
            arguments = function.get("arguments") or "{}"
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments)
            base = f"{step.get('id', '')}/{call.get('id', '')}"
            pending.append(
                ItemRecord(
                    kind=MessageKind.FUNCTION_CALL,
                    external_id=base + "#call",
                    created_at=when,
                    tool_name=(function.get("name") or "")[:100],
                    call_id=(call.get("id") or base)[:100],
                    arguments=arguments,
                )
            )
            pending.append(
                ItemRecord(
                    kind=MessageKind.FUNCTION_OUTPUT,
                    external_id=base + "#output",
                    created_at=when,
                    call_id=(call.get("id") or base)[:100],
                    text=str(function["output"]),
                )
            )
    return before, pending


@dataclass
class Segment:
    """Messages of one thread as one source listed them: a `list` page (with its
    `has_more`), or the loose message objects of one file, in their listed positions."""

    messages: list[dict[str, Any]]
    origin: str
    index: int  # read order, the last tie-break
    has_more: bool | None = None  # None for loose objects


def _stamp(message: dict[str, Any]) -> float | None:
    value = message.get("created_at")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _direction(messages: list[dict[str, Any]]) -> str | None:
    """"asc", "desc", "mixed", or None when the clock cannot tell (one second)."""
    stamps = [s for s in map(_stamp, messages) if s is not None]
    up = any(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    down = any(b < a for a, b in zip(stamps, stamps[1:], strict=False))
    if up and down:
        return "mixed"
    return "asc" if up else "desc" if down else None


def _votes(segments: list[Segment]) -> int:
    """Ascending minus descending neighbour pairs over all segments."""
    total = 0
    for segment in segments:
        stamps = [s for s in map(_stamp, segment.messages) if s is not None]
        total += sum((b > a) - (b < a) for a, b in zip(stamps, stamps[1:], strict=False))
    return total


def _filled(messages: list[dict[str, Any]]) -> list[float | None]:
    """Each message's created_at, a missing one taken from its previous neighbour (or,
    at the start, the next one)."""
    stamps = [_stamp(m) for m in messages]
    known = [s for s in stamps if s is not None]
    last = known[0] if known else None
    out: list[float | None] = []
    for stamp in stamps:
        last = stamp if stamp is not None else last
        out.append(last)
    return out


def _cross_page_direction(segments: list[Segment]) -> str | None:
    """With no page ordered within itself, the last page (`has_more: false`) still tells
    the direction: oldest in a newest-first listing, newest in an oldest-first one."""
    final = [s for s in segments if s.has_more is False]
    others = [s for s in segments if s.has_more]
    stamps_final = [x for s in final for x in _filled(s.messages) if x is not None]
    stamps_other = [x for s in others for x in _filled(s.messages) if x is not None]
    if not stamps_final or not stamps_other:
        return None
    if max(stamps_final) < min(stamps_other):
        return "desc"
    if min(stamps_final) > max(stamps_other):
        return "asc"
    return None


def messages_ordered(segments: list[Segment]) -> tuple[list[dict[str, Any]], str, int]:
    """One thread's messages oldest first, from the data alone: each page's direction
    from its `created_at`s (the API lists newest first by default), positions within a
    page kept for messages sharing a second, pages placed by their time ranges and, on a
    tie, by `has_more` (the last page is the oldest of a newest-first listing), then by
    read order. Returns (messages, why the order had to be inferred or "", how many
    created_at were missing and taken from a neighbour)."""
    segments = [s for s in segments if s.messages]
    directions = {d for d in (_direction(s.messages) for s in segments) if d is not None}
    total = sum(len(s.messages) for s in segments)
    note = ""
    if "mixed" in directions or len(directions) > 1:
        # Out of order somewhere (a clock skew, a hand-edited file): sort by created_at,
        # same-second messages the way most of the listing runs.
        direction = "desc" if _votes(segments) < 0 else "asc"
        note = "listed in neither created_at order: sorted by created_at, same-second messages as most of it runs"
    elif directions:
        (direction,) = directions
    else:
        direction = _cross_page_direction(segments) or ""
        if not direction:
            paged = any(s.has_more is not None for s in segments)
            direction = "desc" if paged else "asc"
            if total > 1:
                note = (
                    "every message shares one created_at second: read as listed, newest first (the API's default)"
                    if paged
                    else "every message shares one created_at second: kept in file order"
                )
    placed: list[tuple[tuple[float, float, int, int], list[dict[str, Any]], list[float | None]]] = []
    for segment in segments:
        messages = segment.messages[::-1] if direction == "desc" else segment.messages
        stamps = _filled(messages)
        known = [x for x in stamps if x is not None] or [0.0]
        last_page = segment.has_more is False
        rank = (0 if last_page else 1) if direction == "desc" else (1 if last_page else 0)
        placed.append(((min(known), max(known), rank, segment.index), messages, stamps))
    placed.sort(key=lambda p: p[0])
    for before, after in zip(placed, placed[1:], strict=False):
        if before[0][:3] == after[0][:3] and before[0][0] == before[0][1] and not note:
            note = "pages whose messages all share one second: placed in file order"
    ordered: list[tuple[float, int, dict[str, Any]]] = []
    missing = 0
    for _key, messages, stamps in placed:
        for message, stamp in zip(messages, stamps, strict=True):
            if _stamp(message) is None and stamp is not None:
                message = {**message, "created_at": stamp}
                missing += 1
            ordered.append((stamp if stamp is not None else 0.0, len(ordered), message))
    ordered.sort(key=lambda o: (o[0], o[1]))
    seen: set[str] = set()
    out = []
    for _stamp_value, _position, message in ordered:
        if message["id"] not in seen:
            seen.add(message["id"])
            out.append(message)
    return out, note, missing


_RUN_STATUS = {
    "completed": TurnStatus.COMPLETED,
    "failed": TurnStatus.FAILED,
    "expired": TurnStatus.FAILED,
    "incomplete": TurnStatus.FAILED,
    "cancelled": TurnStatus.CANCELLED,
    "cancelling": TurnStatus.CANCELLED,
    "requires_action": TurnStatus.CANCELLED,
}
_RUN_ERRORS = {
    "rate_limit_exceeded": TurnError.RATE_LIMITED,
    "server_error": TurnError.PROVIDER_ERROR,
    "invalid_prompt": TurnError.PROVIDER_ERROR,
}


def _tokens(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else 0


def runs_attach(record: ThreadRecord, runs: list[dict[str, Any]], messages: list[dict[str, Any]]) -> None:
    """Turn `thread.run` objects into `RunRecord`s on `record`, each attached to the
    customer message it answered: the one before the run's first message, or, for a run
    that wrote nothing, the last one created before the run started."""
    position = {m["id"]: n for n, m in enumerate(messages)}
    imported = {item.external_id for item in record.items if item.kind == MessageKind.USER}
    first_of_run: dict[str, int] = {}
    for n, message in enumerate(messages):
        if message.get("run_id"):
            first_of_run.setdefault(message["run_id"], n)
    for run in sorted(runs, key=lambda r: (_stamp(r) or 0, str(r.get("id")))):
        status = str(run.get("status") or "")
        if status in ("queued", "in_progress"):
            record.notes["runs still in progress (imported by a later run)"] += 1
            continue
        start = first_of_run.get(run["id"])
        if start is None:
            when = _stamp(run)
            start = next((n for n, m in enumerate(messages) if (_stamp(m) or 0) > (when or 0)), len(messages))
        answers = next(
            (messages[n]["id"] for n in range(start - 1, -1, -1)
             if messages[n].get("role") == "user" and messages[n]["id"] in imported),
            "",
        )
        if not answers or answers not in position:
            record.notes["runs with no imported customer message before them not imported"] += 1
            continue
        last_error = run.get("last_error") if isinstance(run.get("last_error"), dict) else None
        error_code, error_message = "", ""
        if last_error:
            error_code = _RUN_ERRORS.get(str(last_error.get("code")), TurnError.PROVIDER_ERROR)
            error_message = f"{last_error.get('code', 'error')}: {last_error.get('message', '')}"
        elif status == "expired":
            error_code, error_message = TurnError.TIMEOUT, "the run expired"
        elif status == "incomplete":
            reason = (run.get("incomplete_details") or {}).get("reason", "")
            error_code, error_message = TurnError.INCOMPLETE, f"the run ended incomplete: {reason}"
        elif status == "requires_action":
            error_message = "the run stopped at requires_action (submit_tool_outputs) and was never continued"
        elif status in ("cancelled", "cancelling"):
            error_message = "the run was cancelled"
        ended = run.get("completed_at") or run.get("failed_at") or run.get("cancelled_at")
        if status == "expired":
            ended = ended or run.get("expires_at")
        required = run.get("required_action") if isinstance(run.get("required_action"), dict) else None
        usage = run.get("usage")
        record.runs.append(
            RunRecord(
                run_id=str(run["id"])[:255],
                answers=answers,
                status=_RUN_STATUS.get(status, TurnStatus.FAILED),
                source_status=status[:20],
                model=str(run.get("model") or "")[:120],
                instructions=str(run.get("instructions") or ""),
                input_tokens=_tokens(usage, "prompt_tokens"),
                output_tokens=_tokens(usage, "completion_tokens"),
                error_code=error_code,
                error_message=error_message,
                created_at=from_timestamp(run.get("created_at")),
                started_at=from_timestamp(run.get("started_at")),
                finished_at=from_timestamp(ended),
                required_action=required,
                last_error=last_error,
                raw=run,
            )
        )


def thread_fill(
    record: ThreadRecord,
    messages: list[dict[str, Any]],
    steps_by_run: dict[str, list[dict[str, Any]]] | None = None,
    runs: list[dict[str, Any]] | None = None,
) -> None:
    """Append items for `messages` (ascending) and their runs' steps to `record`, and
    the runs themselves as `RunRecord`s."""
    kept: list[dict[str, Any]] = []
    for message in messages:
        if message.get("status") == "in_progress":
            record.notes["messages still in progress (imported by a later run)"] += 1
            break
        kept.append(message)
    before: dict[str, list[ItemRecord]] = {}
    after_run: dict[str, list[ItemRecord]] = {}
    for run_id, steps in (steps_by_run or {}).items():
        run_before, trailing = _step_items(steps, record)
        before.update(run_before)
        if trailing:
            after_run[run_id] = trailing
    last_of_run = {m.get("run_id"): m["id"] for m in kept if m.get("run_id")}
    placed: set[str] = set()
    for message in kept:
        message_id = message["id"]
        record.items.extend(before.get(message_id, ()))
        placed.add(message_id)
        kind = _ROLES.get(message.get("role", ""))
        text = message_text(message, record.placeholders)
        record.messages += 1
        if kind is None:
            record.notes[f"messages with role {message.get('role')!r} skipped"] += 1
        elif not text.strip():
            record.notes["empty messages skipped"] += 1
        else:
            metadata: dict[str, Any] = {}
            for key in ("run_id", "assistant_id"):
                if message.get(key):
                    metadata[key] = message[key]
            if message.get("metadata"):
                metadata["metadata"] = message["metadata"]
            if message.get("status") == "incomplete":
                metadata["incomplete"] = (message.get("incomplete_details") or {}).get("reason", "")
            cited = _cited_files(message)
            if cited:
                metadata["cited_files"] = cited
            record.items.append(
                ItemRecord(
                    kind=kind,
                    external_id=message_id,
                    created_at=from_timestamp(message.get("created_at")),
                    text=text,
                    metadata=metadata,
                    message_key=message_id,
                )
            )
            if kind == MessageKind.ASSISTANT and message.get("assistant_id"):
                record.assistant_id = message["assistant_id"]
        run_id = message.get("run_id") or ""
        if run_id and last_of_run.get(run_id) == message_id:
            record.items.extend(after_run.pop(run_id, ()))
    # Steps of runs whose messages came in an earlier import: already there (their ids
    # de-duplicate) or, if not, the newest items of the thread.
    for message_id, items in before.items():
        if message_id not in placed:
            record.items.extend(items)
    for items in after_run.values():
        record.items.extend(items)
    if kept:
        record.cursor = kept[-1]["id"]
    if runs:
        runs_attach(record, runs, kept)
