"""Turn cost from token usage and a per-model price table (USD per million tokens).

The table lives in settings (`SUPPORT_PLATFORM["PRICES"]`, overridable by environment);
a model missing from it costs nothing rather than a guess, and the offline model is free.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from conversations.agent.provider import Usage

DEFAULT_PRICES: dict[str, tuple[str, str, str]] = {
    # model prefix: (input, cached input, output) per 1M tokens
    "gpt-4.1-mini": ("0.40", "0.10", "1.60"),
    "gpt-4.1-nano": ("0.10", "0.025", "0.40"),
    "gpt-4.1": ("2.00", "0.50", "8.00"),
    "gpt-4o-mini": ("0.15", "0.075", "0.60"),
    "gpt-4o": ("2.50", "1.25", "10.00"),
    "gpt-5-mini": ("0.25", "0.025", "2.00"),
    "gpt-5-nano": ("0.05", "0.005", "0.40"),
    "gpt-5": ("1.25", "0.125", "10.00"),
    "o4-mini": ("1.10", "0.275", "4.40"),
    "o3": ("2.00", "0.50", "8.00"),
}


def price_table() -> dict[str, tuple[str, str, str]]:
    overrides: dict[str, tuple[str, str, str]] = settings.SUPPORT_PLATFORM.get("PRICES", {})
    return {**DEFAULT_PRICES, **overrides}


def prices_for(model: str) -> tuple[Decimal, Decimal, Decimal] | None:
    table = price_table()
    for prefix in sorted(table, key=len, reverse=True):
        if model == prefix or model.startswith(prefix + "-") or model.startswith(prefix):
            return tuple(Decimal(str(v)) for v in table[prefix])  # type: ignore[return-value]
    return None


def cost_for(model: str, usage: Usage) -> Decimal:
    prices = prices_for(model)
    if prices is None:
        return Decimal("0")
    price_in, price_cached, price_out = prices
    uncached = max(0, usage.input_tokens - usage.cached_tokens)
    total = (
        uncached * price_in + usage.cached_tokens * price_cached + usage.output_tokens * price_out
    ) / Decimal(1_000_000)
    return total.quantize(Decimal("0.000001"))
