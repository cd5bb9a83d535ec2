"""The tool registry: typed Python functions exposed to the model as function tools.

A tool is a function with type hints and a Google-style docstring, registered with
`@tool(...)`. Its strict JSON Schema is derived from the signature (every parameter
required; optional ones become nullable), its description from the docstring, so
nothing is written twice. The first parameter is always a `ToolContext`: who the
customer is, so a tool acts for this customer only. Authorisation lives in the tool's
code, never in the prompt.

`execute_calls` runs the model's calls concurrently, each under its own timeout. Bad
JSON, arguments that break the schema, unknown or disabled tool names, timeouts and
exceptions all become a `function_call_output` text the model can recover from.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import re
import time
import types
import typing
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

import jsonschema

from conversations import observers

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolContext:
    conversation_id: str
    customer_id: str
    customer_kind: str
    customer_email: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    agent_id: int | None = None
    turn_id: str | None = None


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    timeout: float | None
    activity: str

    def definition(self) -> dict[str, Any]:
        """The Responses API `tools` entry."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": True,
        }


@dataclass(frozen=True)
class ToolCallResult:
    call_id: str
    name: str
    output: str
    ok: bool


_REGISTRY: dict[str, Tool] = {}


def _schema_for(annotation: Any) -> dict[str, Any]:
    origin = get_origin(annotation)
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if origin is Literal:
        values = list(get_args(annotation))
        return {"type": "string" if all(isinstance(v, str) for v in values) else "integer", "enum": values}
    if origin in (list, typing.List):  # noqa: UP006
        (item,) = get_args(annotation) or (str,)
        return {"type": "array", "items": _schema_for(item)}
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1 and len(get_args(annotation)) == 2:
            inner = _schema_for(members[0])
            inner_type = inner["type"]
            inner["type"] = [inner_type, "null"] if isinstance(inner_type, str) else [*inner_type, "null"]
            if "enum" in inner:
                inner["enum"] = [*inner["enum"], None]
            return inner
    raise TypeError(f"unsupported tool parameter type: {annotation!r}")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and per-argument descriptions."""
    doc = inspect.cleandoc(doc or "")
    summary, _, rest = doc.partition("\nArgs:")
    params: dict[str, str] = {}
    current = None
    for line in rest.splitlines():
        match = re.match(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
        if match:
            current = match.group(1)
            params[current] = match.group(2).strip()
        elif current and line.strip() and not re.match(r"^\w+:$", line.strip()):
            params[current] += " " + line.strip()
        elif re.match(r"^\w+:$", line.strip()):
            current = None
    return " ".join(summary.split()), params


def derive_parameters(fn: Callable[..., Any]) -> tuple[str, dict[str, Any]]:
    hints = typing.get_type_hints(fn)
    signature = inspect.signature(fn)
    description, arg_docs = _parse_docstring(fn.__doc__ or "")
    properties: dict[str, Any] = {}
    params = list(signature.parameters.values())[1:]  # the first is the ToolContext
    for param in params:
        schema = _schema_for(hints[param.name])
        if param.name in arg_docs:
            schema["description"] = arg_docs[param.name]
        properties[param.name] = schema
    return description, {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def tool(
    *, name: str | None = None, timeout: float | None = None, activity: str = "Working on it..."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a function as a tool. `activity` is what the customer is shown while it runs."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        tool_name = name or fn.__name__
        description, parameters = derive_parameters(fn)
        _REGISTRY[tool_name] = Tool(
            name=tool_name,
            description=description,
            parameters=parameters,
            function=fn,
            timeout=timeout,
            activity=activity,
        )
        return fn

    return register


def registry() -> dict[str, Tool]:
    """Every registered tool by name: the built-ins (`ToolsConfig.ready` imports them) and
    the feature apps' (registered by their `ready()`)."""
    return dict(_REGISTRY)


def get_tool(name: str) -> Tool | None:
    return registry().get(name)


def unregister(name: str) -> None:
    """Remove a tool (tests register temporary tools)."""
    _REGISTRY.pop(name, None)


def definitions_for(names: list[str]) -> list[dict[str, Any]]:
    known = registry()
    return [known[n].definition() for n in names if n in known]


def activity_for(name: str) -> str:
    found = registry().get(name)
    return found.activity if found else "Working on it..."


def _parse_arguments(tool_obj: Tool, raw: str) -> dict[str, Any]:
    try:
        arguments = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(arguments, dict):
        raise ValueError("arguments must be a JSON object")
    try:
        jsonschema.validate(arguments, tool_obj.parameters)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "arguments"
        raise ValueError(f"{where}: {exc.message}") from exc
    return arguments


async def _run_one(
    call: dict[str, Any],
    context: ToolContext,
    allowed: set[str],
    executor: Executor | None,
    default_timeout: float,
) -> ToolCallResult:
    name = call.get("name", "")
    call_id = call.get("call_id", "")
    tool_obj = registry().get(name)
    if tool_obj is None or name not in allowed:
        available = ", ".join(sorted(allowed)) or "none"
        return ToolCallResult(
            call_id, name, f"Error: there is no tool named {name!r}. Available tools: {available}.", False
        )
    try:
        arguments = _parse_arguments(tool_obj, call.get("arguments", ""))
    except ValueError as exc:
        return ToolCallResult(call_id, name, f"Error: invalid arguments for {name}: {exc}. Fix them and call again.", False)
    timeout = tool_obj.timeout or default_timeout
    try:
        if inspect.iscoroutinefunction(tool_obj.function):
            result = await asyncio.wait_for(tool_obj.function(context, **arguments), timeout)
        else:
            loop = asyncio.get_running_loop()
            # Run in a copy of this context so the tool's log lines carry the turn's ids.
            in_context = contextvars.copy_context().run
            future = loop.run_in_executor(executor, in_context, lambda: tool_obj.function(context, **arguments))
            result = await asyncio.wait_for(future, timeout)
    except TimeoutError:
        return ToolCallResult(call_id, name, f"Error: {name} did not finish within {timeout:g} seconds.", False)
    except Exception as exc:
        logger.warning("tool %s raised", name, exc_info=True)
        return ToolCallResult(call_id, name, f"Error: {name} failed ({type(exc).__name__}). Tell the customer you could not complete this step.", False)
    output = result if isinstance(result, str) else json.dumps(result, default=str, ensure_ascii=False)
    return ToolCallResult(call_id, name, output, True)


async def execute_calls(
    calls: list[dict[str, Any]],
    context: ToolContext,
    *,
    allowed: list[str],
    executor: Executor | None = None,
    default_timeout: float = 15.0,
    on_done: Callable[[ToolCallResult], Awaitable[None]] | None = None,
) -> list[ToolCallResult]:
    """Run the model's calls concurrently; results come back in the calls' order.
    `on_done` is awaited as each call finishes (to report progress as it happens).

    Synchronous tools run on `executor` (the engine's tool threads), never on the
    threads that serve the database or the event loop, so a slow tool in one
    conversation delays nobody else. A timed-out synchronous tool cannot be killed: its
    thread finishes in the background and its late result is discarded."""
    allowed_set = set(allowed)
    known = registry()

    async def run(call: dict[str, Any]) -> ToolCallResult:
        started = time.monotonic()
        result = await _run_one(call, context, allowed_set, executor, default_timeout)
        # Observers (metrics) see a made-up name as "unknown": bounded label values.
        observers.tool_called(result.name if result.name in known else "unknown", result.ok, time.monotonic() - started)
        if on_done is not None:
            await on_done(result)
        return result

    return list(await asyncio.gather(*(run(call) for call in calls)))
