"""Vendor the part of OpenAI's OpenAPI spec the test suite validates against.

Usage: `python tests/spec/extract_subset.py path/to/openapi.json [source-note]`

Writes `openai-responses-subset.json` next to this script: the `CreateResponse`
(request body of `POST /v1/responses`) and `ResponseStreamEvent` (one streamed event)
schemas with every component schema they reference, transitively, under the same
`#/components/schemas/...` paths, so `$ref`s resolve unchanged. The spec is MIT
licensed (`LICENSE-openai-openapi` here). Re-run it when upgrading the spec.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOTS = ("CreateResponse", "ResponseStreamEvent")
PREFIX = "#/components/schemas/"
HERE = Path(__file__).resolve().parent


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if not value.startswith(PREFIX):
                    raise ValueError(f"unsupported reference {value}")
                found.add(value.removeprefix(PREFIX))
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def extract(spec: dict[str, Any], roots: tuple[str, ...] = ROOTS) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    kept: dict[str, Any] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept[name] = schemas[name]
        pending.extend(_refs(schemas[name]) - kept.keys())
    return {
        "openapi": spec["openapi"],
        "info": {"title": spec["info"]["title"], "version": spec["info"]["version"]},
        "x-roots": list(roots),
        "components": {"schemas": dict(sorted(kept.items()))},
    }


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    spec = json.loads(Path(argv[1]).read_text())
    subset = extract(spec)
    if len(argv) > 2:
        subset["x-source"] = argv[2]
    out = HERE / "openai-responses-subset.json"
    out.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    print(f"{out.name}: {len(subset['components']['schemas'])} schemas")


if __name__ == "__main__":
    main(sys.argv)
