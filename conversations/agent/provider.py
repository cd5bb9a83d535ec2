"""The provider client: one streamed Responses API call, through the official SDK.

`client_for(agent)` builds (and caches) an `AsyncOpenAI` for the agent's base URL and
key, with the SDK's own retries and timeout configured; with no key configured it is
wired to the built-in offline model, which speaks the same wire format, so the same
parsing code runs either way. `stream_round` sends one streamed `POST /responses`
(`store=False`) through the SDK's client, forwards text deltas as they arrive, collects
the finished output items from `response.output_item.done`, and returns them with
usage, or raises `ProviderFailure` with a stable error code. A stream that ends without a terminal event
is a failure, never an answer (the SDK does not retry a stream that broke mid-way).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from conversations.conf import platform_setting
from conversations.models.turn import TurnError

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


@dataclass
class RoundResult:
    response_id: str
    output: list[dict[str, Any]]
    usage: Usage
    text: str = ""


@dataclass
class ProviderFailure(Exception):
    code: str
    message: str
    partial_text: str = ""
    response_id: str = ""
    usage: Usage = field(default_factory=Usage)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def is_offline(agent: Any) -> bool:
    return not _api_key(agent)


def _api_key(agent: Any) -> str:
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
    from conversations.agent.offline_model import OfflineModelTransport

    return OfflineModelTransport()


_transports: dict[str, Callable[[], httpx2.AsyncBaseTransport]] = {OFFLINE_BASE_URL: _offline_transport}


def client_for(agent: Any) -> AsyncOpenAI:
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
        if transport is not None:
            kwargs["http_client"] = httpx2.AsyncClient(transport=transport())
        client = AsyncOpenAI(**kwargs)
        clients[cache_key] = client
    return client


def model_label(model: str, agent: Any) -> str:
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
) -> RoundResult:
    """Send one streamed request; see the module docstring for the contract."""
    partial: list[str] = []
    output: dict[int, dict[str, Any]] = {}
    terminal: Any = None
    try:
        stream = await client.post(
            "/responses", body=_wire_body(request), cast_to=object, stream=True, stream_cls=_EventStream
        )
        async with stream:  # closes the response on every exit, cancellation included
            events = aiter(stream)
            async for event in events:
                kind = event.get("type")
                if kind == "response.output_text.delta":
                    partial.append(event["delta"])
                    await on_text_delta(event["delta"])
                elif kind == "response.output_item.added":
                    item = event.get("item") or {}
                    if item.get("type") == "function_call" and on_call_started is not None:
                        await on_call_started(_without_nulls(item))
                elif kind == "response.output_item.done":
                    output[event["output_index"]] = _without_nulls(event["item"])
                elif kind in _TERMINAL:
                    terminal = event
                    break
            if terminal is not None:
                await _drain(events)
    except openai.APIError as exc:
        raise _failure_from_exception(exc, "".join(partial)) from exc
    except httpx2.HTTPError as exc:
        raise ProviderFailure(
            TurnError.STREAM_INTERRUPTED, f"The stream broke: {exc}", "".join(partial)
        ) from exc
    if terminal is None:
        raise ProviderFailure(
            TurnError.STREAM_INTERRUPTED,
            "The provider's stream ended before the response was complete.",
            "".join(partial),
        )
    return _finish(terminal, output, "".join(partial))


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
_EventStream = openai.AsyncStream[dict[str, Any]]


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
