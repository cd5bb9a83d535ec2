"""The single accessor for the platform's own settings (`settings.SUPPORT_PLATFORM`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def platform_setting(name: str) -> Any:
    """Return one platform option; an unknown name is a programming error (KeyError)."""
    return settings.SUPPORT_PLATFORM[name]


def offline_mode() -> bool:
    """True when no provider key is configured: turns go to the built-in offline model."""
    return not platform_setting("PROVIDER_API_KEY")
