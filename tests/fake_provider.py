"""A scripted fake Responses API provider, served over real HTTP on loopback.

Tests queue what the "model" does next (stream text, call tools, fail with a status,
hang, cut the stream, report `response.failed`...) and the platform reaches it through
the official SDK exactly as it would reach OpenAI, so the real parsing code runs. Every
request body received is kept in `requests`, and every event sent in `events_sent`, for
assertions. When the script is empty the provider answers "OK".

Steps are taken from a conversation's own script first (`queue_for`, matched on the
request's `metadata.conversation`), so concurrent conversations can be scripted
independently, then from the shared script (`queue`). A step can hold its stream open
on a `gate` (a `threading.Event`) after `pause_after` text deltas, so a test can look at
the platform mid-stream and then let it go on; `reset()` opens every gate.

Like the real API (and independently of the platform's capability table, so a test
of that table can fail), it refuses with HTTP 400: `temperature` / `top_p` sent to a
reasoning model (o-series, GPT-5 family; GPT-5.1 and later take them with effort
`none` only), and a reasoning input item without its encrypted content (with
`store=False` nothing is persisted to look it up by). Reasoning output carries
encrypted content only when the request asked for it in `include`.

Embeddings (`POST /v1/embeddings`): deterministic 16-dimension vectors made from the
text's words (the same word always adds to the same axes), recorded in
`embeddings_requests`, not in `requests`; with `embeddings_stuck` set, each request
waits for `embeddings_released` first, as a hung endpoint does.

Prompt caching: with `count_prompt_tokens` on, a response reports `input_tokens` as
the request's prompt size (a crude tokenisation of instructions, tools and input in
order) and `cached_tokens` as its longest common prefix with the previous request of
the same `prompt_cache_key`, counted as OpenAI does (nothing under 1,024 tokens, then
in steps of 128).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from conversations.agent import wire


@dataclass
class Step:
    kind: str  # text | calls | status | hang | cut | failed | incomplete | error_event
    words: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)  # (name, raw JSON arguments)
    reasoning: str | None = None
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the first event
    delta_delay: float = 0.0  # seconds between deltas
    cut_after: int = 0  # events sent before the connection is dropped
    code: str = "server_error"
    message: str = "The model failed."
    usage: tuple[int, int, int, int] = (100, 20, 0, 0)  # input, output, cached, reasoning
    gate: threading.Event | None = None  # hold the stream open until set...
    pause_after: int = 0  # ...after this many text deltas
    trailing_reasoning: str | None = None  # a reasoning item after the calls (dangling)
    phase: str | None = None  # the answer message's `phase` (None: no phase field)
    commentary: str | None = None  # a `phase: commentary` message streamed first
    cut_in: str = "text"  # where a cut stream stops: before_first_event | reasoning | tool_arguments | text


def text(message: str, **kwargs: Any) -> Step:
    """Stream `message` word by word."""
    import re

    return Step(kind="text", words=re.findall(r"\S+\s*", message), **kwargs)


def calls(*pairs: tuple[str, Any], reasoning: str | None = None, **kwargs: Any) -> Step:
    """Call tools; arguments may be a dict (encoded) or a raw string (sent verbatim)."""
    encoded = [(n, a if isinstance(a, str) else json.dumps(a)) for n, a in pairs]
    return Step(kind="calls", calls=encoded, reasoning=reasoning, **kwargs)


def status(code: int, message: str = "error", headers: dict[str, str] | None = None, error_code: str | None = None) -> Step:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": error_code}}
    return Step(kind="status", status=code, body=body, headers=headers or {})


def hang(seconds: float, gate: threading.Event | None = None) -> Step:
    """Accept the request and send nothing for `seconds` (or until `gate` is set)."""
    return Step(kind="hang", delay=seconds, gate=gate)


def cut(message: str = "This answer will be cut off half way", after_words: int = 3, **kwargs: Any) -> Step:
    step = text(message, **kwargs)
    step.kind = "cut"
    step.cut_after = after_words
    return step


def cut_during(where: str, *, reasoning: str | None = "gAAAA-cut", tool: str = "lookup_order") -> Step:
    """A stream that breaks `before_first_event`, during `reasoning` or `tool_arguments`."""
    step = Step(kind="cut", calls=[(tool, '{"order_number": "1001"}')], reasoning=reasoning, cut_in=where)
    return step


def failed(code: str = "server_error", message: str = "The model failed.", **kwargs: Any) -> Step:
    return Step(kind="failed", code=code, message=message, **kwargs)


def error_event(code: str = "server_error", message: str = "Stream error.") -> Step:
    return Step(kind="error_event", code=code, message=message)


def incomplete(message: str = "Partial answer", **kwargs: Any) -> Step:
    step = text(message, **kwargs)
    step.kind = "incomplete"
    return step


class FakeProvider:
    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.scripts: dict[str, deque[Step]] = {}
        self.requests: list[dict[str, Any]] = []
        self.events_sent: list[dict[str, Any]] = []
        self.gates: list[threading.Event] = []
        self.lock = threading.Lock()
        # Answers requests when no script applies (default: "OK"); gets the request body.
        self.responder: Callable[[dict[str, Any]], Step] | None = None
        self.count_prompt_tokens = False
        self.prompt_cache = wire.PromptCache()
        self.embeddings_requests: list[dict[str, Any]] = []
        self.embeddings_stuck = threading.Event()
        self.embeddings_released = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/embeddings"):
                    provider._serve_embeddings(self, body)
                    return
                with provider.lock:
                    provider.requests.append(body)
                    step = provider._next_step(body)
                    refusal = _refusal(body)
                    if refusal is not None:
                        step = status(400, refusal[1], error_code=refusal[0])
                    prompt = provider._prompt_usage(body)
                if prompt is not None and step.kind != "status":
                    step.usage = (prompt[0], step.usage[1], prompt[1], step.usage[3])
                provider._serve(self, body, step)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def queue(self, *steps: Step) -> None:
        with self.lock:
            self.script.extend(steps)
            self.gates += [s.gate for s in steps if s.gate is not None]

    def queue_for(self, conversation_id: Any, *steps: Step) -> None:
        """Script the steps for one conversation's requests only."""
        with self.lock:
            self.scripts.setdefault(str(conversation_id), deque()).extend(steps)
            self.gates += [s.gate for s in steps if s.gate is not None]

    def requests_for(self, conversation_id: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if _conversation_of(r) == str(conversation_id)]

    def reset(self) -> None:
        with self.lock:
            for gate in self.gates:
                gate.set()
            self.gates.clear()
            self.script.clear()
            self.scripts.clear()
            self.requests.clear()
            self.events_sent.clear()
            self.responder = None
            self.count_prompt_tokens = False
            self.prompt_cache = wire.PromptCache()
            self.embeddings_requests.clear()
            self.embeddings_stuck.clear()
            self.embeddings_released.set()  # a request still waiting goes
            self.embeddings_released = threading.Event()

    def _serve_embeddings(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.embeddings_requests.append(body)
        if self.embeddings_stuck.is_set():
            self.embeddings_released.wait(60)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": _word_vector(t)} for i, t in enumerate(texts)]
        payload = json.dumps({"object": "list", "data": data, "model": body.get("model", ""),
                              "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _next_step(self, body: dict[str, Any]) -> Step:
        own = self.scripts.get(_conversation_of(body))
        if own:
            return own.popleft()
        if self.script:
            return self.script.popleft()
        return self.responder(body) if self.responder else text("OK")

    def _prompt_usage(self, body: dict[str, Any]) -> tuple[int, int] | None:
        """(input tokens, cached tokens) of this request, when counting (see the module
        docstring). Called under the lock."""
        return self.prompt_cache.usage(body) if self.count_prompt_tokens else None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- serving --------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Step) -> None:
        if step.kind == "hang":
            if step.gate is not None:
                step.gate.wait(step.delay)
            else:
                time.sleep(step.delay)
            self._close(handler)
            return
        if step.kind == "status":
            payload = json.dumps(step.body).encode()
            handler.send_response(step.status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            for key, value in step.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if step.delay:
            time.sleep(step.delay)
        # Chunked and kept alive, as real providers stream: the client pools the
        # connection afterwards (a cut stream ends without the closing chunk).
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        writer = wire.EventWriter(body)
        encrypted = "reasoning.encrypted_content" in (body.get("include") or [])

        def reasoning(content: str) -> list[dict[str, Any]]:
            return list(writer.reasoning(content if encrypted else None))

        events = list(writer.created())
        if step.commentary is not None:
            events += list(writer.message(re.findall(r"\S+\s*", step.commentary), phase="commentary"))
        if step.kind == "calls" or (step.kind == "cut" and step.calls):
            if step.reasoning is not None:
                events += reasoning(step.reasoning)
            for name, arguments in step.calls:
                events += list(writer.function_call(name, arguments))
            if step.trailing_reasoning is not None:
                events += reasoning(step.trailing_reasoning)
        else:
            events += list(writer.message(step.words, phase=step.phase))
        if step.kind == "cut" and step.calls:
            stop = {"before_first_event": "response.created", "reasoning": "response.output_item.done",
                    "tool_arguments": "response.function_call_arguments.delta"}[step.cut_in]
            events = events[: next(i for i, e in enumerate(events) if e["type"] == stop)]
        usage = wire.usage(step.usage[0], step.usage[1], step.usage[2], step.usage[3])
        if step.kind == "failed":
            events.append(writer.failed(step.code, step.message, usage))
        elif step.kind == "incomplete":
            events.append(writer.incomplete("max_output_tokens", usage))
        elif step.kind == "error_event":
            events.append(writer.error(step.code, step.message))
        elif step.kind != "cut":
            events.append(writer.completed(usage))
        sent_deltas = 0
        try:
            for event in events:
                if event["type"] == "response.output_text.delta":
                    if step.kind == "cut" and sent_deltas >= step.cut_after:
                        break
                    if step.gate is not None and sent_deltas == step.pause_after:
                        step.gate.wait(30)
                    sent_deltas += 1
                    if step.delta_delay:
                        time.sleep(step.delta_delay)
                data = wire.sse(event)
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                handler.wfile.flush()
                with self.lock:
                    self.events_sent.append(event)
            if step.kind == "cut":
                self._close(handler)
                return
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    @staticmethod
    def _close(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.wfile.flush()
        except OSError:
            pass


def _conversation_of(body: dict[str, Any]) -> str:
    return str((body.get("metadata") or {}).get("conversation", ""))


_REASONING_MODEL = re.compile(r"^(o\d|gpt-5)(?!.*-chat)")
_NONE_EFFORT_SAMPLING = re.compile(r"^gpt-5\.[1-9]")


def _refusal(body: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) of the 400 the real API answers to this request, if any."""
    model = str(body.get("model", ""))
    if _REASONING_MODEL.match(model):
        effort = (body.get("reasoning") or {}).get("effort")
        sampling_ok = bool(_NONE_EFFORT_SAMPLING.match(model)) and effort in (None, "none")
        for param in ("temperature", "top_p"):
            if param in body and not sampling_ok:
                return "unsupported_parameter", (
                    f"Unsupported parameter: '{param}' is not supported with this model."
                )
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "reasoning" and not item.get("encrypted_content"):
            return "invalid_request_error", (
                f"Item with id '{item.get('id')}' not found. Items are not persisted when `store` is set to false."
            )
    return None


def _word_vector(text: str) -> list[float]:
    vector = [0.0] * 16
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % 16] += 1.0
        vector[digest[1] % 16] += 0.5
    return vector if any(vector) else [1.0] + [0.0] * 15
