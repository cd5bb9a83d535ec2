"""Assistants API objects (as the official OpenAPI spec shapes them) -> importer records.

Used by both the API source and the export-file source, so a thread imports the same
whichever way it arrives.

- An `assistant` becomes an `AgentPlan`: name, instructions, model, temperature, and its
  function tools matched by name to the tool registry; unmatched functions are reported
  as needing an implementation, `file_search`/`retrieval` point at the knowledge base,
  `code_interpreter` has no equivalent and is reported.
- A thread's messages (ascending) become user/assistant items with their original
  `created_at`. Text is kept; images, attached files and annotations become a
  described placeholder in the text and are counted. Import stops before the first
  message still `in_progress`, so a run that is still writing comes in on a re-run.
- Run steps, when given, become function call/output items, placed where the run made
  them: before the message the run created next, or after the run's last message.
  Only calls that have an output are imported (a call without its output can never be
  sent to the model); the others are counted.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from conversations.importers.records import AgentPlan, ItemRecord, ThreadRecord, from_timestamp
from conversations.models.message import MessageKind

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


def ascending(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages oldest first. Exports are often in the API's default `desc` order;
    within one second, the listed order is kept (reversed for a descending list)."""
    if len(messages) > 1 and (messages[0].get("created_at") or 0) > (messages[-1].get("created_at") or 0):
        messages = messages[::-1]
    return sorted(messages, key=lambda m: m.get("created_at") or 0)


def thread_fill(
    record: ThreadRecord,
    messages: list[dict[str, Any]],
    steps_by_run: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """Append items for `messages` (ascending) and their runs' steps to `record`."""
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
        run_id = message.get("run_id")
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
