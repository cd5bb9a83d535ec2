"""What a model round's output items become: items stored in the conversation, and
items passed back to the model in the next round of the same turn.

A round's output comes from `provider.stream_round` as the provider returned it
(`output_item.done` payloads). Two rules live here:
- a reasoning item goes back only together with the item that followed it (the API
  rejects a dangling reasoning item), and exactly as returned (encrypted content kept,
  since with `store=False` the provider holds nothing);
- assistant text is stored as an assistant message; function calls are stored with
  their outputs once the tools ran (see `tool_items`). Reasoning is never stored.
"""

from __future__ import annotations

from typing import Any

from conversations.models.message import MessageKind

_FUNCTION_CALL_KEYS = ("type", "id", "call_id", "name", "arguments")
_REASONING_KEYS = ("type", "id", "summary", "encrypted_content")


def message_text(item: dict[str, Any]) -> str:
    """The text of an assistant `message` output item."""
    return "".join(
        part.get("text", "") for part in item.get("content", []) if part.get("type") == "output_text"
    )


def passback_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Output items to send back in the next round, as input items."""
    kept = []
    for index, item in enumerate(output):
        if item.get("type") == "reasoning" and index + 1 >= len(output):
            continue
        kept.append(_as_input_item(item))
    return kept


def _as_input_item(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "function_call":
        return {k: item[k] for k in _FUNCTION_CALL_KEYS if k in item}
    if kind == "reasoning":
        return {k: item[k] for k in _REASONING_KEYS if k in item}
    if kind == "message":
        return {"type": "message", "role": "assistant", "content": message_text(item)}
    return item


def function_calls(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in output if item.get("type") == "function_call"]


def answer_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assistant messages of a round, as fields for `items_append`."""
    return [
        {"kind": MessageKind.ASSISTANT, "text": message_text(item)}
        for item in output
        if item.get("type") == "message" and message_text(item)
    ]


def tool_items(call: dict[str, Any], outcome: Any) -> list[dict[str, Any]]:
    """A function call and its output (a `ToolCallResult`), as fields for `items_append`."""
    return [
        {
            "kind": MessageKind.FUNCTION_CALL,
            "tool_name": call.get("name", ""),
            "call_id": call.get("call_id", ""),
            "tool_arguments": call.get("arguments", ""),
        },
        {
            "kind": MessageKind.FUNCTION_OUTPUT,
            "tool_name": outcome.name,
            "call_id": outcome.call_id,
            "text": outcome.output,
            "metadata": {"ok": outcome.ok},
        },
    ]


def output_input_item(outcome: Any) -> dict[str, Any]:
    """A tool's result as the `function_call_output` input item of the next round."""
    return {"type": "function_call_output", "call_id": outcome.call_id, "output": outcome.output}
