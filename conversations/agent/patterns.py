"""Agent settings that are lists of labelled regular expressions,
`[{"label": "ORDER_REF", "pattern": "..."}]`: PII redaction's own patterns
(`redaction.py`) and the guardrails' blocklists (`guardrails.py`). One validation for
both, so an agent's form and `agent_save` refuse the same things with the same words."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

LABEL = re.compile(r"[A-Z][A-Z0-9_]{0,30}")


def labelled_patterns_problem(
    value: Any, *, example: str, limit: int, flags: int = 0, reserved: Collection[str] = ()
) -> str | None:
    """Why `value` cannot be such a list (None when it can): at most `limit` objects with
    an upper-case `label` (none of `reserved`) and a regular expression that compiles
    (with `flags`) and cannot match the empty string. `example` is the label the
    messages show."""
    if value in (None, ""):
        return None
    if not isinstance(value, list):
        return f'Give a list of {{"label": "{example}", "pattern": "..."}} objects.'
    if len(value) > limit:
        return f"At most {limit} patterns."
    for index, entry in enumerate(value, 1):
        if not isinstance(entry, dict) or set(entry) != {"label", "pattern"}:
            return f'Pattern {index}: give exactly a "label" and a "pattern".'
        label, pattern = entry["label"], entry["pattern"]
        if not isinstance(label, str) or not LABEL.fullmatch(label):
            return f"Pattern {index}: the label must be upper case letters, digits and _ (e.g. {example})."
        if label in reserved:
            return f"Pattern {index}: {label} is a built-in kind; choose another label."
        if not isinstance(pattern, str) or not pattern:
            return f"Pattern {index}: the pattern must be a regular expression."
        try:
            compiled = re.compile(pattern, flags)
        except re.error as exc:
            return f"Pattern {index}: not a valid regular expression ({exc})."
        if compiled.fullmatch(""):
            return f"Pattern {index}: the pattern matches empty text."
    return None
