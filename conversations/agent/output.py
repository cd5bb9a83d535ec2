"""What a model round's output items become: items stored in the conversation, and
items passed back to the model in the next round of the same turn.

A round's output comes from `provider.stream_round` as the provider returned it
(`output_item.done` payloads). Two rules live here:
- a reasoning item goes back only together with the item that followed it (the API
  rejects a dangling reasoning item), and exactly as returned (encrypted content kept,
  since with `store=False` the provider holds nothing). A reasoning item without its
  encrypted content is never passed back (the API would have to look it up by id, and
  with `store=False` it has nothing): it is dropped, and the item it led to goes
  without its provider id;
- an assistant message goes back with its `phase` (`commentary` / `final_answer`)
  unchanged, as OpenAI requires for gpt-5.3-codex, gpt-5.4 and later;
- only `final_answer` or phase-less text is stored as the customer's answer, with its
  phase in the message's metadata; `commentary` ("Let me look that up") is progress,
  kept in the turn's audit (`commentary_texts`) and never shown as the answer. Function
  calls are stored with their outputs once the tools ran (see `tool_items`). Reasoning
  is never stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conversations.models.message import MessageKind

if TYPE_CHECKING:
    from tools.registry import ToolCallResult

_FUNCTION_CALL_KEYS = ("type", "id", "call_id", "name", "arguments")
_REASONING_KEYS = ("type", "id", "summary", "encrypted_content")


def message_text(item: dict[str, Any]) -> str:
    """The text of an assistant `message` output item."""
    return "".join(
        part.get("text", "") for part in item.get("content", []) if part.get("type") == "output_text"
    )


COMMENTARY = "commentary"


def is_commentary(item: dict[str, Any]) -> bool:
    return item.get("type") == "message" and item.get("phase") == COMMENTARY


def passback_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Output items to send back in the next round, as input items."""
    kept = []
    dropped_reasoning = False
    for index, item in enumerate(output):
        if item.get("type") == "reasoning" and (index + 1 >= len(output) or not item.get("encrypted_content")):
            dropped_reasoning = True
            continue
        passed = _as_input_item(item)
        if dropped_reasoning and item.get("type") != "reasoning":
            passed.pop("id", None)  # its reasoning is gone: do not point at it by id
        dropped_reasoning = False
        kept.append(passed)
    return kept


def _as_input_item(item: dict[str, Any]) -> dict[str, Any]:
    kind = item.get("type")
    if kind == "function_call":
        return {k: item[k] for k in _FUNCTION_CALL_KEYS if k in item}
    if kind == "reasoning":
        return {k: item[k] for k in _REASONING_KEYS if k in item}
    if kind == "message":
        passed = {"type": "message", "role": "assistant", "content": message_text(item)}
        if item.get("phase"):
            passed["phase"] = item["phase"]
        return passed
    return item


def commentary_texts(output: list[dict[str, Any]]) -> list[str]:
    """The commentary a round streamed (progress, for the audit)."""
    return [message_text(item) for item in output if is_commentary(item) and message_text(item)]


def function_calls(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in output if item.get("type") == "function_call"]


def answer_items(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer messages of a round (final answer or phase-less), as fields for
    `items_append`; a phase is kept in the metadata so later turns pass it back."""
    answers = []
    for item in output:
        if item.get("type") != "message" or is_commentary(item) or not message_text(item):
            continue
        fields: dict[str, Any] = {"kind": MessageKind.ASSISTANT, "text": message_text(item)}
        if item.get("phase"):
            fields["metadata"] = {"phase": item["phase"]}
        answers.append(fields)
    return answers


def tool_items(call: dict[str, Any], outcome: ToolCallResult) -> list[dict[str, Any]]:
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


def output_input_item(outcome: ToolCallResult) -> dict[str, Any]:
    """A tool's result as the `function_call_output` input item of the next round."""
    return {"type": "function_call_output", "call_id": outcome.call_id, "output": outcome.output}
