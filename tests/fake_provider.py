"""A scripted fake Responses API provider, served over real HTTP on loopback.

Tests queue what the "model" does next (stream text, call tools, fail with a status,
hang, cut the stream, report `response.failed`...) and the platform reaches it through
the official SDK exactly as it would reach OpenAI, so the real parsing code runs. Every
request body received is kept in `requests` for assertions. When the script is empty
the provider answers "OK".
"""

from __future__ import annotations

import json
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
    gate: threading.Event | None = None  # held until the test sets it (at most 60 s)


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


def hang(seconds: float) -> Step:
    return Step(kind="hang", delay=seconds)


def cut(message: str = "This answer will be cut off half way", after_words: int = 3) -> Step:
    step = text(message)
    step.kind = "cut"
    step.cut_after = after_words
    return step


def failed(code: str = "server_error", message: str = "The model failed.") -> Step:
    return Step(kind="failed", code=code, message=message)


def error_event(code: str = "server_error", message: str = "Stream error.") -> Step:
    return Step(kind="error_event", code=code, message=message)


def incomplete(message: str = "Partial answer") -> Step:
    step = text(message)
    step.kind = "incomplete"
    return step


class FakeProvider:
    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.requests: list[dict[str, Any]] = []
        self.events_sent: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        # Answers requests when the script is empty (default: "OK"); gets the request body.
        self.responder: Callable[[dict[str, Any]], Step] | None = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with provider.lock:
                    provider.requests.append(body)
                    step = provider.script.popleft() if provider.script else None
                if step is None:
                    step = provider.responder(body) if provider.responder else text("OK")
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

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.requests.clear()
            self.events_sent.clear()
            self.responder = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- serving --------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], step: Step) -> None:
        if step.gate is not None:
            step.gate.wait(timeout=60)
        if step.kind == "hang":
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
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")
        handler.end_headers()
        writer = wire.EventWriter(body)
        events = list(writer.created())
        if step.kind == "calls":
            if step.reasoning is not None:
                events += list(writer.reasoning(step.reasoning))
            for name, arguments in step.calls:
                events += list(writer.function_call(name, arguments))
        else:
            events += list(writer.message(step.words))
        input_t, output_t, cached_t, reasoning_t = step.usage
        if step.kind == "failed":
            events.append(writer.failed(step.code, step.message))
        elif step.kind == "incomplete":
            events.append(writer.incomplete("max_output_tokens"))
        elif step.kind == "error_event":
            events.append(writer.error(step.code, step.message))
        elif step.kind != "cut":
            events.append(writer.completed(wire.usage(input_t, output_t, cached_t, reasoning_t)))
        sent_deltas = 0
        try:
            for event in events:
                if event["type"] == "response.output_text.delta":
                    if step.kind == "cut" and sent_deltas >= step.cut_after:
                        break
                    sent_deltas += 1
                    if step.delta_delay:
                        time.sleep(step.delta_delay)
                handler.wfile.write(wire.sse(event))
                handler.wfile.flush()
                with self.lock:
                    self.events_sent.append(event)
        except (BrokenPipeError, ConnectionResetError):
            return
        self._close(handler)

    @staticmethod
    def _close(handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.wfile.flush()
        except OSError:
            pass
