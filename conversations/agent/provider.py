"""The provider client: one streamed Responses API call, through the official SDK.

`client_for(agent)` builds (and caches) an `AsyncOpenAI` for the agent's base URL and
key, with the SDK's own retries and timeout configured; with no key configured it is
wired to the built-in offline model, which speaks the same wire format, so the same
parsing code runs either way. `stream_round` sends one streamed `POST /responses`
(`store=False`) through the SDK's client, forwards text deltas as they arrive, collects
the finished output items from `response.output_item.done`, and returns them with
usage, or raises `ProviderFailure` with a stable error code. A stream that ends without a terminal event
is a failure, never an answer (the SDK does not retry a stream that broke mid-way).

The round's audit is kept whatever happens: the response id as soon as
`response.created` carries it, every HTTP attempt (status, `x-request-id`, error), the
SDK's retries included (observed by httpx event hooks on the client, reported to the
round that is running through a context variable, so concurrent turns sharing a client
keep their own), and the stream phase a cut happened in (`before_first_event`,
`reasoning`, `tool_arguments`, `text`). A stream that broke after its first event is
an interrupted stream, never "provider unreachable".

Assistant messages may carry `phase`: text of a `commentary` message is streamed to
`on_commentary` (progress, not the answer); only `final_answer` or phase-less text goes
to `on_text_delta` and into the partial answer.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import httpx2
import openai
from openai import AsyncOpenAI

from conversations.agent.offline_model import OfflineModelTransport
from conversations.conf import platform_setting
from conversations.models.turn import TurnError

if TYPE_CHECKING:
    from conversations.models import Agent

OFFLINE_BASE_URL = "http://offline-model.internal/v1"
# One client (and connection pool) per event loop: pooled connections belong to the loop
# that opened them, and a process may run turns on more than one loop over its life.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str, float, int], AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class Usage:
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens


class StreamPhase:
    BEFORE_FIRST_EVENT = "before_first_event"
    STARTED = "started"  # response.created arrived, no output yet
    REASONING = "reasoning"
    TOOL_ARGUMENTS = "tool_arguments"
    TEXT = "text"
    COMPLETE = "complete"


@dataclass
class RoundResult:
    response_id: str
    output: list[dict[str, Any]]
    usage: Usage
    text: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ProviderFailure(Exception):
    code: str
    message: str
    partial_text: str = ""
    response_id: str = ""
    usage: Usage = field(default_factory=Usage)
    stream_phase: str = ""
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def is_offline(agent: Agent | None) -> bool:
    return not _api_key(agent)


def _api_key(agent: Agent | None) -> str:
    if agent is not None and agent.provider_api_key_env:
        return os.environ.get(agent.provider_api_key_env, "")
    return platform_setting("PROVIDER_API_KEY")


def register_transport(base_url: str, factory: Callable[[], httpx2.AsyncBaseTransport]) -> None:
    """Serve `base_url` from an in-process HTTP transport instead of the network, through
    the same SDK client code path. The offline model is served this way; so is the
    benchmark's zero-latency provider."""
    _transports[base_url.rstrip("/")] = factory
    for clients in list(_clients.values()):
        for cache_key in [k for k in clients if k[0] == base_url]:
            clients.pop(cache_key)


def _offline_transport() -> httpx2.AsyncBaseTransport:
    return OfflineModelTransport()


_transports: dict[str, Callable[[], httpx2.AsyncBaseTransport]] = {OFFLINE_BASE_URL: _offline_transport}


def client_for(agent: Agent | None) -> AsyncOpenAI:
    """The SDK client for this agent on the running loop (cached so connection pools
    are reused). Call from a coroutine."""
    key = _api_key(agent)
    base_url = (agent.provider_base_url if agent is not None else "") or platform_setting(
        "PROVIDER_BASE_URL"
    )
    timeout = float(platform_setting("PROVIDER_TIMEOUT_SECONDS"))
    retries = int(platform_setting("PROVIDER_MAX_RETRIES"))
    if not key:
        base_url, key = OFFLINE_BASE_URL, "offline"
    cache_key = (base_url or "", key, timeout, retries)
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(cache_key)
    if client is None:
        kwargs: dict[str, Any] = {"api_key": key, "timeout": timeout, "max_retries": retries}
        if base_url:
            kwargs["base_url"] = base_url
        transport = _transports.get((base_url or "").rstrip("/"))
        hooks: dict[str, list[Callable[..., Any]]] = {"request": [_attempt_started], "response": [_attempt_answered]}
        if transport is not None:
            kwargs["http_client"] = httpx2.AsyncClient(transport=transport(), event_hooks=hooks)
        else:
            kwargs["http_client"] = openai.DefaultAsyncHttpxClient(event_hooks=hooks)
        client = AsyncOpenAI(**kwargs)
        clients[cache_key] = client
    return client


# The attempts of the round running in this task (set by `stream_round`; the SDK sends
# each attempt from the awaiting task, so its httpx hooks see the same context).
_round_attempts: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar(
    "round_attempts", default=None
)


async def _attempt_started(request: httpx2.Request) -> None:
    attempts = _round_attempts.get()
    if attempts is not None:
        if attempts and attempts[-1]["status"] is None and not attempts[-1]["error"]:
            attempts[-1]["error"] = "no response (timeout or connection error; retried)"
        retry = request.headers.get("x-stainless-retry-count", "")
        attempts.append({"attempt": len(attempts) + 1, "retry_count": int(retry) if retry.isdigit() else None,
                         "status": None, "request_id": "", "error": ""})


async def _attempt_answered(response: httpx2.Response) -> None:
    attempts = _round_attempts.get()
    if attempts:
        attempts[-1].update(status=response.status_code, request_id=response.headers.get("x-request-id", ""))


def _note_attempt_error(attempts: list[dict[str, Any]], exc: BaseException) -> None:
    """The SDK turns a failed attempt into an exception without a response: name it on
    the attempt that has no status."""
    for attempt in attempts:
        if attempt["status"] is None and not attempt["error"]:
            attempt["error"] = type(exc).__name__


def model_label(model: str, agent: Agent | None) -> str:
    """What a user is shown about who answered."""
    if is_offline(agent):
        return "Offline demo model (no AI provider configured)"
    return model


def _usage_from(response: dict[str, Any]) -> Usage:
    usage = response.get("usage") or {}
    return Usage(
        input_tokens=usage.get("input_tokens") or 0,
        cached_tokens=(usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        reasoning_tokens=(usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0,
    )


def _without_nulls(value: Any) -> Any:
    """An output item as we store and send it back: JSON nulls left out, as the SDK's
    `model_dump(exclude_none=True)` would."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _error_code_for(code: str | None, message: str) -> str:
    if code == "context_length_exceeded" or "context length" in (message or "").lower():
        return TurnError.CONTEXT_LENGTH
    return TurnError.RESPONSE_FAILED


def _failure_from_exception(exc: Exception, partial: str) -> ProviderFailure:
    if isinstance(exc, openai.APITimeoutError):
        return ProviderFailure(TurnError.TIMEOUT, "The AI provider did not answer in time.", partial)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderFailure(
            TurnError.CONNECTION if not partial else TurnError.STREAM_INTERRUPTED,
            "The connection to the AI provider failed.",
            partial,
        )
    if isinstance(exc, openai.RateLimitError):
        return ProviderFailure(TurnError.RATE_LIMITED, "The AI provider is rate limiting us.", partial)
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        code = body.get("code") if body else None
        if isinstance(body.get("error"), dict):
            code = body["error"].get("code", code)
        if code == "context_length_exceeded":
            return ProviderFailure(TurnError.CONTEXT_LENGTH, str(exc.message), partial)
        return ProviderFailure(
            TurnError.PROVIDER_ERROR,
            f"The AI provider answered HTTP {exc.status_code}: {exc.message}"[:1000],
            partial,
        )
    if isinstance(exc, openai.APIError):
        return ProviderFailure(TurnError.PROVIDER_ERROR, str(exc.message)[:1000], partial)
    raise exc


async def stream_round(
    client: AsyncOpenAI,
    request: dict[str, Any],
    on_text_delta: Callable[[str], Awaitable[None]],
    on_call_started: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    on_commentary: Callable[[str], Awaitable[None]] | None = None,
) -> RoundResult:
    """Send one streamed request; see the module docstring for the contract."""
    partial: list[str] = []
    output: dict[int, dict[str, Any]] = {}
    commentary_items: set[int | None] = set()
    terminal: Any = None
    attempts: list[dict[str, Any]] = []
    token = _round_attempts.set(attempts)
    state = {"phase": StreamPhase.BEFORE_FIRST_EVENT, "response_id": ""}

    def failure(code: str, message: str, cause: BaseException | None = None) -> ProviderFailure:
        if cause is not None:
            _note_attempt_error(attempts, cause)
        return ProviderFailure(
            code, message, "".join(partial), state["response_id"], stream_phase=state["phase"],
            attempts=attempts,
        )

    try:
        stream = await client.post(
            "/responses", body=_wire_body(request), cast_to=object, stream=True, stream_cls=_EventStream
        )
        async with stream:  # closes the response on every exit, cancellation included
            events = cast(AsyncIterator[dict[str, Any]], aiter(stream))  # see _EventStream
            async for event in events:
                kind = event.get("type")
                if state["phase"] == StreamPhase.BEFORE_FIRST_EVENT:
                    state["phase"] = StreamPhase.STARTED
                if kind == "response.output_text.delta":
                    if event.get("output_index") in commentary_items:
                        if on_commentary is not None:
                            await on_commentary(event["delta"])
                        continue
                    state["phase"] = StreamPhase.TEXT
                    partial.append(event["delta"])
                    await on_text_delta(event["delta"])
                elif kind == "response.created":
                    state["response_id"] = (event.get("response") or {}).get("id", "")
                elif kind == "response.output_item.added":
                    item = event.get("item") or {}
                    item_type = item.get("type")
                    if item_type == "function_call":
                        state["phase"] = StreamPhase.TOOL_ARGUMENTS
                        if on_call_started is not None:
                            await on_call_started(_without_nulls(item))
                    elif item_type == "reasoning":
                        state["phase"] = StreamPhase.REASONING
                    elif item_type == "message":
                        state["phase"] = StreamPhase.TEXT
                        if item.get("phase") == "commentary":
                            commentary_items.add(event.get("output_index"))
                elif kind == "response.output_item.done":
                    output[event["output_index"]] = _without_nulls(event["item"])
                elif kind in _TERMINAL:
                    terminal = event
                    break
            if terminal is not None:
                await _drain(events)
    except openai.APIError as exc:
        _note_attempt_error(attempts, exc)
        if state["phase"] != StreamPhase.BEFORE_FIRST_EVENT and isinstance(exc, openai.APIConnectionError):
            raise failure(TurnError.STREAM_INTERRUPTED, f"The stream broke during {state['phase']}.") from exc
        mapped = _failure_from_exception(exc, "".join(partial))
        raise replace(mapped, response_id=state["response_id"], stream_phase=state["phase"], attempts=attempts) from exc
    except httpx2.HTTPError as exc:
        raise failure(TurnError.STREAM_INTERRUPTED, f"The stream broke during {state['phase']}: {exc}", exc) from exc
    finally:
        _round_attempts.reset(token)
    if terminal is None:
        raise failure(
            TurnError.STREAM_INTERRUPTED,
            f"The provider's stream ended during {state['phase']}, before the response was complete.",
        )
    try:
        result = _finish(terminal, output, "".join(partial))
    except ProviderFailure as failed:
        failed.attempts = attempts
        failed.stream_phase = StreamPhase.COMPLETE
        failed.response_id = failed.response_id or state["response_id"]
        raise
    result.attempts = attempts
    return result


async def _drain(events: Any) -> None:
    """Read the stream to its end after the terminal event (a provider ends it there),
    so the SDK's chain of async generators finishes here rather than in the garbage
    collector, which may finalise them from another thread mid-way. Bounded, since the
    answer is already complete."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in events:
                pass
    except (TimeoutError, openai.APIError, httpx2.HTTPError):
        pass


_DRAIN_SECONDS = 2.0


def _wire_body(request: dict[str, Any]) -> dict[str, Any]:
    """The request, for the SDK to send as it is.

    Our request is already the exact wire format (the tests validate every one against
    the official `CreateResponse` schema). Passed as typed parameters, the SDK's
    parameter transform walks every input item on the event loop: about 0.3 ms of CPU
    per item, some 70 ms for a full 8,000-token history, before the first byte is sent."""
    if request.get("stream") is not True:
        raise ValueError("stream_round sends streaming requests only")
    return request


# The stream's events as the JSON objects they are. `responses.create` would validate
# each one into the SDK's typed union of some fifty event models (pydantic, the full
# response object included in three of them): about a sixth of a web process's CPU
# under load. The SDK still does everything else: the request, its retries and timeout,
# error statuses as typed exceptions, and the SSE decoding (an `error` event included).
# `object`, not `dict[str, Any]`: with `object` the SDK hands each decoded event over
# as it is; with a dict type it rebuilds every event through `construct_type`, ~45 µs
# per event (per text delta), which was most of the stream's own CPU.
_EventStream = openai.AsyncStream[object]


_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})


def _finish(event: dict[str, Any], output: dict[int, dict[str, Any]], partial: str) -> RoundResult:
    """The round's result from its terminal event, or the ProviderFailure it reports."""
    kind = event["type"]
    if kind == "error":
        message = event.get("message") or "The AI provider reported an error."
        raise ProviderFailure(_error_code_for(event.get("code"), message), message, partial)
    response = event.get("response") or {}
    if kind == "response.incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason") or "unknown"
        raise ProviderFailure(
            TurnError.INCOMPLETE, f"The response was cut short ({reason}).", partial,
            response.get("id", ""), _usage_from(response),
        )
    if kind == "response.failed":
        error = response.get("error") or {}
        message = error.get("message") or "The AI provider failed the response."
        raise ProviderFailure(
            _error_code_for(error.get("code"), message), message, partial,
            response.get("id", ""), _usage_from(response),
        )
    items = [output[i] for i in sorted(output)] or [_without_nulls(item) for item in response.get("output") or []]
    return RoundResult(response_id=response.get("id", ""), output=items, usage=_usage_from(response), text=partial)
