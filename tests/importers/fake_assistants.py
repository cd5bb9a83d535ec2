"""A fake Assistants-compatible API over real HTTP on loopback, for the importer tests.

It serves what the official OpenAPI spec describes - assistants, threads, their
messages and run steps, lists paged with `limit`/`order`/`after`/`before` and answered
with `first_id`/`last_id`/`has_more` - and validates every object it is given, and every
body it sends, against the spec's own schemas (vendored in `spec/`). Tests can make it
answer an error once (a 429 with Retry-After, a 500), hang on a path until released,
or slow every request; it records each request with its query and arrival time, and the
most requests it ever had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

SPEC = json.loads((Path(__file__).parent / "spec" / "assistants-openapi.json").read_text())
_validators: dict[str, jsonschema.Draft202012Validator] = {}


def validate(obj: Any, schema: str) -> None:
    """Raise jsonschema.ValidationError unless `obj` is a valid `schema` of the spec."""
    if schema not in _validators:
        _validators[schema] = jsonschema.Draft202012Validator({**SPEC, "$ref": f"#/components/schemas/{schema}"})
    _validators[schema].validate(obj)


# --- spec-shaped objects --------------------------------------------------------------
def text(value: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": annotations or []}}


def citation(marker: str, file_id: str, start: int) -> dict[str, Any]:
    return {
        "type": "file_citation", "text": marker, "file_citation": {"file_id": file_id},
        "start_index": start, "end_index": start + len(marker),
    }


def image_file(file_id: str) -> dict[str, Any]:
    return {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}


def image_url(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}


def assistant(assistant_id: str, *, name: str, model: str = "gpt-4o", instructions: str = "",
              tools: list[dict[str, Any]] | None = None, vector_stores: list[str] | None = None,
              temperature: float = 1.0) -> dict[str, Any]:
    obj = {
        "id": assistant_id, "object": "assistant", "created_at": 1_699_000_000, "name": name,
        "description": None, "model": model, "instructions": instructions, "tools": tools or [],
        "tool_resources": {"file_search": {"vector_store_ids": vector_stores}} if vector_stores else {},
        "metadata": {}, "temperature": temperature, "top_p": 1.0, "response_format": "auto",
    }
    validate(obj, "AssistantObject")
    return obj


def function_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": f"{name} tool",
                                              "parameters": {"type": "object", "properties": {}}}}


def thread(thread_id: str, *, created_at: int = 1_700_000_000, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    obj = {"id": thread_id, "object": "thread", "created_at": created_at, "tool_resources": None,
           "metadata": metadata or {}}
    validate(obj, "ThreadObject")
    return obj


def message(message_id: str, thread_id: str, role: str, content: list[dict[str, Any]], *, created_at: int,
            run_id: str | None = None, assistant_id: str | None = None, status: str = "completed",
            attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    obj = {
        "id": message_id, "object": "thread.message", "created_at": created_at, "thread_id": thread_id,
        "status": status, "incomplete_details": None,
        "completed_at": created_at if status == "completed" else None, "incomplete_at": None,
        "role": role, "content": content, "assistant_id": assistant_id, "run_id": run_id,
        "attachments": attachments or [], "metadata": {},
    }
    validate(obj, "MessageObject")
    return obj


def function_step(step_id: str, thread_id: str, run_id: str, calls: list[tuple[str, str, str, str | None]],
                  *, created_at: int, assistant_id: str = "asst_support") -> dict[str, Any]:
    """A tool_calls run step; calls are (call id, name, arguments, output)."""
    obj = _step(step_id, thread_id, run_id, created_at, assistant_id, {
        "type": "tool_calls",
        "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args, "output": output}}
            for cid, name, args, output in calls
        ],
    })
    validate(obj, "RunStepObject")
    return obj


def message_step(step_id: str, thread_id: str, run_id: str, message_id: str, *, created_at: int,
                 assistant_id: str = "asst_support") -> dict[str, Any]:
    obj = _step(step_id, thread_id, run_id, created_at, assistant_id,
                {"type": "message_creation", "message_creation": {"message_id": message_id}})
    validate(obj, "RunStepObject")
    return obj


def _step(step_id: str, thread_id: str, run_id: str, created_at: int, assistant_id: str,
          details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": step_id, "object": "thread.run.step", "created_at": created_at, "assistant_id": assistant_id,
        "thread_id": thread_id, "run_id": run_id, "type": details["type"], "status": "completed",
        "step_details": details, "last_error": None, "expired_at": None, "cancelled_at": None,
        "failed_at": None, "completed_at": created_at, "metadata": {},
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


# --- the server -----------------------------------------------------------------------
@dataclass
class Seen:
    path: str
    query: dict[str, str]
    at: float
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class FakeAssistantsApi:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._serve(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.assistants: dict[str, dict[str, Any]] = {}
            self.threads: dict[str, dict[str, Any]] = {}
            self.messages: dict[str, list[dict[str, Any]]] = {}
            self.steps: dict[tuple[str, str], list[dict[str, Any]]] = {}
            self.runs: dict[tuple[str, str], dict[str, Any]] = {}
            self.requests: list[Seen] = []
            self.failures: dict[str, deque[tuple[int, dict[str, str]]]] = {}
            self.hang_paths: set[str] = set()
            self.release = threading.Event()
            self.delay = 0.0
            self.in_flight = 0
            self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # --- arranging --------------------------------------------------------------------
    def add_assistant(self, obj: dict[str, Any]) -> None:
        self.assistants[obj["id"]] = obj

    def add_thread(self, obj: dict[str, Any], messages: list[dict[str, Any]] = (), steps: list[dict[str, Any]] = (),
                   runs: list[dict[str, Any]] = ()) -> None:
        self.threads[obj["id"]] = obj
        for run_obj in runs:
            validate(run_obj, "RunObject")
            self.runs[(obj["id"], run_obj["id"])] = run_obj
        self.messages.setdefault(obj["id"], []).extend(messages)
        for step in steps:
            self.steps.setdefault((obj["id"], step["run_id"]), []).append(step)

    def fail_once(self, path: str, status: int, headers: dict[str, str] | None = None) -> None:
        """The next request for `path` (without the /v1 prefix) answers `status`."""
        self.failures.setdefault(path, deque()).append((status, headers or {}))

    def hang(self, path: str) -> None:
        """Requests for `path` wait until `release` is set."""
        self.hang_paths.add(path)

    def seen(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    # --- serving ----------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        path = url.path.removeprefix("/v1")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        seen = Seen(path, query, time.monotonic(), headers={k.lower(): v for k, v in handler.headers.items()})
        with self.lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failure = self.failures[path].popleft() if self.failures.get(path) else None
        try:
            if self.delay:
                time.sleep(self.delay)
            if path in self.hang_paths:
                self.release.wait(60)
            if failure:
                status, headers = failure
                code = "rate_limit_exceeded" if status == 429 else "server_error"
                return self._send(handler, seen, status, _error(f"injected {status}", code), headers)
            if seen.headers.get("authorization") != "Bearer test-assistants-key":
                return self._send(handler, seen, 401, _error("bad key", "invalid_api_key"))
            status, body = self._route(path, query)
            self._send(handler, seen, status, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _send(self, handler: BaseHTTPRequestHandler, seen: Seen, status: int, body: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        seen.status = status
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(payload)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if parts[0] == "assistants" and len(parts) == 2:
            found = self.assistants.get(parts[1])
            return (200, found) if found else (404, _error(f"No assistant found with id '{parts[1]}'."))
        if parts[0] != "threads" or len(parts) < 2 or parts[1] not in self.threads:
            return 404, _error(f"No thread found with id '{parts[1] if len(parts) > 1 else ''}'.")
        thread_id = parts[1]
        if len(parts) == 2:
            return 200, self.threads[thread_id]
        if parts[2:] == ["messages"]:
            return self._page(self.messages[thread_id], query, "ListMessagesResponse")
        if len(parts) == 4 and parts[2] == "runs":
            found = self.runs.get((thread_id, parts[3]))
            return (200, found) if found else (404, _error(f"No run found with id '{parts[3]}'."))
        if len(parts) == 5 and parts[2] == "runs" and parts[4] == "steps":
            steps = self.steps.get((thread_id, parts[3]))
            if steps is None:
                return 404, _error(f"No run found with id '{parts[3]}'.")
            return self._page(steps, query, "ListRunStepsResponse")
        return 404, _error("Unknown path.")

    def _page(self, objects: list[dict[str, Any]], query: dict[str, str], schema: str) -> tuple[int, dict[str, Any]]:
        limit = int(query.get("limit", 20))
        if not 1 <= limit <= 100:
            return 400, _error("limit must be between 1 and 100", "invalid_value")
        ordered = sorted(objects, key=lambda o: o["created_at"], reverse=query.get("order", "desc") == "desc")
        ids = [o["id"] for o in ordered]
        start = ids.index(query["after"]) + 1 if query.get("after") in ids else 0
        end = ids.index(query["before"]) if query.get("before") in ids else len(ordered)
        data = ordered[start:end][:limit]
        body = {
            "object": "list", "data": data,
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
            "has_more": start + len(data) < end,
        }
        if data:  # the spec requires string ids; an empty page has none to give
            validate(body, schema)
        return 200, body


def _error(message: str, code: str = "not_found") -> dict[str, Any]:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    validate(body, "ErrorResponse")
    return body


def run(run_id: str, thread_id: str, *, created_at: int, status: str = "completed", model: str = "gpt-4o",
        instructions: str = "Be kind.", assistant_id: str = "asst_support",
        usage: dict[str, int] | None = None, last_error: dict[str, str] | None = None,
        required_action: dict[str, Any] | None = None) -> dict[str, Any]:
    """A RunObject as the spec shapes it."""
    finished = created_at + 2
    obj = {
        "id": run_id, "object": "thread.run", "created_at": created_at, "thread_id": thread_id,
        "assistant_id": assistant_id, "status": status, "required_action": required_action,
        "last_error": last_error, "expires_at": None, "started_at": created_at + 1,
        "cancelled_at": finished if status == "cancelled" else None,
        "failed_at": finished if status == "failed" else None,
        "completed_at": finished if status == "completed" else None,
        "incomplete_details": None, "model": model, "instructions": instructions, "tools": [],
        "metadata": {}, "usage": usage if status in ("completed", "failed", "cancelled", "expired") else None,
        "temperature": 1.0, "top_p": 1.0, "max_prompt_tokens": None, "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None}, "tool_choice": "auto",
        "parallel_tool_calls": True, "response_format": "auto",
    }
    validate(obj, "RunObject")
    return obj
