"""Builders for the Responses API streaming wire format (server side).

Used by the built-in offline model, and by the test suite's scripted fake provider,
to emit byte-exact Server-Sent Events whose payloads follow the official OpenAPI
`ResponseStreamEvent` schemas; `PromptCache` simulates a provider's prompt cache for
the fake provider and `manage.py bench_prompt_cache`. The platform's client never uses these: it parses what
arrives with the official SDK.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def usage(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    request: dict[str, Any],
    *,
    response_id: str,
    status: str,
    output: list[dict[str, Any]],
    usage_obj: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    response = {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": request.get("model", "unknown"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": request.get("reasoning"),
        "store": request.get("store", False),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools", []),
        "top_p": 1.0,
        "truncation": "disabled",
        "metadata": request.get("metadata") or {},
    }
    if usage_obj is not None:
        # The schema has no null usage: it is absent until the response has one.
        response["usage"] = usage_obj
    return response


class EventWriter:
    """Numbers events in order (`sequence_number`) for one streamed response."""

    def __init__(self, request: dict[str, Any], response_id: str | None = None) -> None:
        self.request = request
        self.response_id = response_id or new_id("resp")
        self.sequence = 0
        self.output: list[dict[str, Any]] = []

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def created(self) -> Iterator[dict[str, Any]]:
        response = response_object(self.request, response_id=self.response_id, status="in_progress", output=[])
        yield self.event("response.created", response=response)
        yield self.event("response.in_progress", response=response)

    def message(self, words: list[str], phase: str | None = None) -> Iterator[dict[str, Any]]:
        """A streamed assistant message, one delta per element of `words`; with `phase`
        (`commentary` / `final_answer`) as the models that use it send it."""
        index = len(self.output)
        item_id = new_id("msg")
        phased = {"phase": phase} if phase else {}
        yield self.event(
            "response.output_item.added",
            output_index=index,
            item={"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": [],
                  **phased},
        )
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield self.event("response.content_part.added", item_id=item_id, output_index=index, content_index=0, part=part)
        for word in words:
            yield self.event(
                "response.output_text.delta",
                item_id=item_id, output_index=index, content_index=0, delta=word, logprobs=[],
            )
        text = "".join(words)
        yield self.event(
            "response.output_text.done",
            item_id=item_id, output_index=index, content_index=0, text=text, logprobs=[],
        )
        done_part = {**part, "text": text}
        yield self.event("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=done_part)
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [done_part],
                **phased}
        self.output.append(item)
        yield self.event("response.output_item.done", output_index=index, item=item)

    def function_call(self, name: str, arguments: str, call_id: str | None = None) -> Iterator[dict[str, Any]]:
        index = len(self.output)
        item_id = new_id("fc")
        call_id = call_id or new_id("call")
        base = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name}
        yield self.event("response.output_item.added", output_index=index, item={**base, "arguments": "", "status": "in_progress"})
        yield self.event("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=arguments)
        yield self.event("response.function_call_arguments.done", item_id=item_id, output_index=index, name=name, arguments=arguments)
        item = {**base, "arguments": arguments, "status": "completed"}
        self.output.append(item)
        yield self.event("response.output_item.done", output_index=index, item=item)

    def reasoning(self, encrypted_content: str | None, summary: str = "") -> Iterator[dict[str, Any]]:
        """A reasoning item; `encrypted_content` None when the request did not ask for it."""
        index = len(self.output)
        item_id = new_id("rs")
        summary_parts = [{"type": "summary_text", "text": summary}] if summary else []
        yield self.event("response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning", "summary": []})
        item = {"id": item_id, "type": "reasoning", "summary": summary_parts}
        if encrypted_content is not None:
            item["encrypted_content"] = encrypted_content
        self.output.append(item)
        yield self.event("response.output_item.done", output_index=index, item=item)

    def completed(self, usage_obj: dict[str, Any]) -> dict[str, Any]:
        return self.event(
            "response.completed",
            response=response_object(self.request, response_id=self.response_id, status="completed", output=self.output, usage_obj=usage_obj),
        )

    def failed(self, code: str, message: str, usage_obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.event(
            "response.failed",
            response=response_object(
                self.request, response_id=self.response_id, status="failed", output=self.output,
                error={"code": code, "message": message}, usage_obj=usage_obj,
            ),
        )

    def incomplete(self, reason: str, usage_obj: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.event(
            "response.incomplete",
            response=response_object(
                self.request, response_id=self.response_id, status="incomplete", output=self.output,
                incomplete_reason=reason, usage_obj=usage_obj,
            ),
        )

    def error(self, code: str, message: str) -> dict[str, Any]:
        return self.event("error", code=code, message=message, param=None)


_TOKEN = re.compile(r"\w+|[^\w\s]")


def prompt_tokens(request: dict[str, Any]) -> list[str]:
    """A crude tokenisation of what a provider caches, in order: instructions, tools,
    then each input item (serialised with sorted keys)."""
    parts = [str(request.get("instructions") or ""), json.dumps(request.get("tools") or [], sort_keys=True)]
    parts += [json.dumps(item, sort_keys=True) for item in request.get("input") or []]
    return _TOKEN.findall("\n".join(parts))


class PromptCache:
    """A provider's prompt cache, simulated for tests and benchmarks: a request's cached
    tokens are its longest common prefix with the previous request of the same
    `prompt_cache_key`, counted as OpenAI documents it (nothing under 1,024 tokens, then
    in steps of 128). Not thread-safe: callers hold their own lock."""

    def __init__(self) -> None:
        self.last: dict[str, list[str]] = {}

    def usage(self, request: dict[str, Any]) -> tuple[int, int]:
        """(input tokens, cached tokens) for this request; remembers it for the next."""
        tokens = prompt_tokens(request)
        key = str(request.get("prompt_cache_key") or "")
        common = 0
        for a, b in zip(tokens, self.last.get(key, []), strict=False):
            if a != b:
                break
            common += 1
        self.last[key] = tokens
        cached = 0 if common < 1024 else 1024 + (common - 1024) // 128 * 128
        return len(tokens), cached
