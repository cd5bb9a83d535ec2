"""What each model accepts: the capability table every request is built from.

The Responses API schema accepts combinations the real API rejects (it allows
`temperature` with any model, every `reasoning.effort` value with every model), so the
request builder (`plan.TurnPlan.request`) and the agent's validation at save
(`agent_problems`, called by the admin form and `console.agents.agent_save`) both read
this table instead of trusting the agent's form.

A row, matched by the longest model-name prefix, says:
- `reasoning`: a reasoning model. Its requests always carry
  `include: ["reasoning.encrypted_content"]`: with `store=False` that is the only way
  its reasoning items come back usable, and one is never passed back without it.
- `efforts`: the `reasoning.effort` values it accepts; `default_effort` is what the
  provider uses when none is sent (blank on the agent = "model default").
- `sampling`: the sampling parameters it accepts (`temperature`, `top_p`), and
  `sampling_efforts`: when set, only with those efforts (GPT-5.1 / 5.2 / 5.4 accept
  them with effort `none` only).
- `phase`: its assistant messages carry `phase` (`commentary` / `final_answer`),
  which must be passed back unchanged.
- `context_window` and `max_output_tokens`: limits in tokens.

Sources (checked December 2026): OpenAI's model pages and reasoning guide
(platform.openai.com/docs/models, /docs/guides/reasoning, /docs/guides/latest-model:
"temperature, top_p and logprobs are only supported with GPT-5.2 / 5.1 when reasoning
effort is none"; GPT-5.1 added `none` and made it the default; `xhigh` from
gpt-5.1-codex-max and GPT-5.2 on; `minimal` only on the original GPT-5 family), the
vendored OpenAPI spec's `ReasoningEffort` and `MessagePhase` schemas, OpenAI's GPT-5.4
migration notes on `phase` ("for gpt-5.3-codex, gpt-5.4 and later, preserve and resend
phase on all assistant messages", also in Azure's `MessagePhase` reference), and the
effort matrix collected on the OpenAI developer forum ("Compatibility Matrix:
Reasoning models - Effort").

Unknown models get `UNKNOWN`, a documented safe default: treated as a reasoning model
only when the agent sets an effort (any value the spec allows), sampling parameters
sent only without an effort, `phase` passed back whenever the provider returned one.

Overrides, most specific last: `SUPPORT_MODEL_CAPABILITIES_JSON` (a JSON object of
prefix -> fields, merged over the built-in row of that prefix or added as a new row),
then the agent's own `model_capabilities` (fields merged over the matched row).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from conversations.models import Agent

SAMPLING_PARAMS = ("temperature", "top_p")
SPEC_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


@dataclass(frozen=True)
class ModelCapabilities:
    reasoning: bool
    efforts: tuple[str, ...] = ()
    default_effort: str = ""
    sampling: tuple[str, ...] = ()
    sampling_efforts: tuple[str, ...] = ()
    phase: bool = False
    context_window: int = 128_000
    max_output_tokens: int = 16_384
    prefix: str = ""  # the row that matched ("" = the unknown-model default)

    def effective_effort(self, effort: str) -> str:
        """The effort the provider will use for an agent's setting ("" = its default)."""
        return effort or self.default_effort

    def accepts_sampling(self, param: str, effort: str) -> bool:
        """Whether `param` may be sent with the agent's effort setting."""
        if param not in self.sampling:
            return False
        if self.sampling_efforts:
            return self.effective_effort(effort) in self.sampling_efforts
        if self.prefix == "":  # unknown model: sampling only when no effort is asked for
            return not effort
        return True

    def is_reasoning(self, effort: str) -> bool:
        return self.reasoning or (self.prefix == "" and bool(effort))


_CHAT = {"reasoning": False, "sampling": SAMPLING_PARAMS}
_O_SERIES = {"reasoning": True, "efforts": ("low", "medium", "high"), "default_effort": "medium",
             "context_window": 200_000, "max_output_tokens": 100_000}
_GPT5 = {"reasoning": True, "efforts": ("minimal", "low", "medium", "high"), "default_effort": "medium",
         "context_window": 400_000, "max_output_tokens": 128_000}
_GPT51 = {**_GPT5, "efforts": ("none", "low", "medium", "high"), "default_effort": "none",
          "sampling": SAMPLING_PARAMS, "sampling_efforts": ("none",)}
_GPT52 = {**_GPT51, "efforts": ("none", "low", "medium", "high", "xhigh")}
_CODEX = {**_GPT5, "efforts": ("low", "medium", "high"), "default_effort": "medium"}

BUILTIN: dict[str, dict[str, Any]] = {
    "gpt-4o": {**_CHAT, "context_window": 128_000, "max_output_tokens": 16_384},
    "gpt-4.1": {**_CHAT, "context_window": 1_047_576, "max_output_tokens": 32_768},
    "o1": _O_SERIES,
    "o3": _O_SERIES,
    "o4-mini": _O_SERIES,
    "gpt-5": _GPT5,  # gpt-5, gpt-5-mini, gpt-5-nano
    "gpt-5-chat": {**_CHAT, "context_window": 128_000, "max_output_tokens": 16_384},
    "gpt-5-codex": _CODEX,
    "gpt-5-pro": {**_GPT5, "efforts": ("high",), "default_effort": "high", "max_output_tokens": 272_000},
    "gpt-5.1": _GPT51,
    "gpt-5.1-chat": {**_GPT5, "efforts": ("medium",), "default_effort": "medium", "context_window": 128_000,
                     "max_output_tokens": 16_384},
    "gpt-5.1-codex": _CODEX,
    "gpt-5.1-codex-max": {**_CODEX, "efforts": ("low", "medium", "high", "xhigh")},
    "gpt-5.2": _GPT52,
    "gpt-5.2-chat": {**_GPT5, "efforts": ("medium",), "default_effort": "medium", "context_window": 128_000,
                     "max_output_tokens": 16_384},
    "gpt-5.2-codex": {**_CODEX, "efforts": ("low", "medium", "high", "xhigh")},
    "gpt-5.2-pro": {**_GPT5, "efforts": ("medium", "high", "xhigh"), "default_effort": "medium"},
    "gpt-5.3-codex": {**_CODEX, "efforts": ("low", "medium", "high", "xhigh"), "phase": True},
    "gpt-5.4": {**_GPT52, "phase": True, "context_window": 1_050_000},
    "gpt-5.4-pro": {**_GPT5, "efforts": ("medium", "high", "xhigh"), "default_effort": "medium", "phase": True,
                    "context_window": 1_050_000},
    # The built-in offline model (conversations/agent/offline_model.py).
    "offline-support": {**_CHAT, "context_window": 128_000, "max_output_tokens": 16_384},
}

UNKNOWN = ModelCapabilities(
    reasoning=False, efforts=SPEC_EFFORTS, sampling=SAMPLING_PARAMS, phase=False,
    context_window=128_000, max_output_tokens=16_384, prefix="",
)

_FIELDS = {f.name for f in fields(ModelCapabilities)} - {"prefix"}


def _row(values: dict[str, Any], prefix: str, base: ModelCapabilities | None = None) -> ModelCapabilities:
    unknown = set(values) - _FIELDS
    if unknown:
        raise ValueError(f"unknown model capability fields: {', '.join(sorted(unknown))}")
    clean: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    if base is not None:
        return replace(base, **clean, prefix=prefix)
    return ModelCapabilities(**{"reasoning": False, **clean}, prefix=prefix)


def table() -> dict[str, ModelCapabilities]:
    """The built-in rows with the environment's overrides applied."""
    rows = {prefix: _row(values, prefix) for prefix, values in BUILTIN.items()}
    for prefix, values in _env_overrides().items():
        rows[prefix] = _row(values, prefix, rows.get(prefix))
    return rows


def _env_overrides() -> dict[str, dict[str, Any]]:
    raw = settings.SUPPORT_PLATFORM.get("MODEL_CAPABILITIES") or {}
    if isinstance(raw, str):
        raw = json.loads(raw) if raw.strip() else {}
    return raw


def capabilities_for(model: str, overrides: dict[str, Any] | None = None) -> ModelCapabilities:
    """The row for `model` (longest matching prefix), with an agent's overrides."""
    rows = table()
    row = UNKNOWN
    for prefix in sorted(rows, key=len, reverse=True):
        if model == prefix or model.startswith(prefix):
            row = rows[prefix]
            break
    if overrides:
        row = _row(dict(overrides), row.prefix, row)
    return row


def describe(row: ModelCapabilities) -> dict[str, Any]:
    """The row as JSON (for the audit and the admin's help)."""
    return asdict(row)


def agent_problems(agent: Agent, model: str) -> dict[str, str]:
    """Why this agent's settings cannot work with `model` (field -> message); empty if
    they can. An agent is refused at save rather than sending a request the API rejects."""
    try:
        caps = capabilities_for(model, getattr(agent, "model_capabilities", None) or None)
    except (TypeError, ValueError) as exc:
        return {"model_capabilities": f"Invalid capability override: {exc}"}
    problems: dict[str, str] = {}
    effort = agent.reasoning_effort or ""
    name = model or "the default model"
    if effort:
        if not caps.is_reasoning(effort):
            problems["reasoning_effort"] = f"{name} is not a reasoning model: leave the effort blank."
        elif effort not in caps.efforts:
            problems["reasoning_effort"] = (
                f"{name} accepts reasoning effort {', '.join(caps.efforts)}; not {effort}."
            )
    if agent.temperature is not None and not caps.accepts_sampling("temperature", effort):
        if "temperature" not in caps.sampling:
            problems["temperature"] = f"{name} does not accept a temperature: leave it blank."
        else:
            problems["temperature"] = (
                f"{name} accepts a temperature only with reasoning effort "
                f"{', '.join(caps.sampling_efforts) or 'blank'}: leave it blank or change the effort."
            )
    if agent.max_output_tokens and agent.max_output_tokens > caps.max_output_tokens:
        problems["max_output_tokens"] = f"{name} writes at most {caps.max_output_tokens} output tokens."
    budget = getattr(agent, "history_token_budget", 0) or 0
    if budget > caps.context_window:
        problems["history_token_budget"] = f"{name} reads at most {caps.context_window} tokens of context."
    return problems
