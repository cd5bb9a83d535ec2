"""A minimal Server-Sent Events reader for the tests (the way a client parses them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Decoded `data` of each event from an iterator of lines; comments are skipped."""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield json.loads("\n".join(data))
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield json.loads("\n".join(data))
