"""Validators for the vendored OpenAI OpenAPI subset (see `extract_subset.py`).

OpenAPI 3.1 schemas are JSON Schema 2020-12, so `jsonschema` validates them directly;
`$ref`s resolve through a `referencing` registry holding the subset document.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SUBSET = Path(__file__).resolve().parent / "openai-responses-subset.json"
URI = "urn:openai-openapi-subset"


@cache
def validator(schema_name: str) -> Draft202012Validator:
    document = json.loads(SUBSET.read_text())
    registry = Registry().with_resource(URI, Resource(contents=document, specification=DRAFT202012))
    return Draft202012Validator(
        {"$ref": f"{URI}#/components/schemas/{schema_name}"}, registry=registry
    )


def errors(schema_name: str, instance: Any) -> list[str]:
    """Readable validation errors (empty when `instance` is valid), best match first."""
    from jsonschema.exceptions import best_match

    found = list(validator(schema_name).iter_errors(instance))
    if not found:
        return []
    best = best_match(found)
    where = "/".join(str(p) for p in best.absolute_path) or "(root)"
    return [f"{where}: {best.message}"] + [e.message[:200] for e in found if e is not best][:3]


def assert_valid_request(body: dict[str, Any]) -> None:
    problems = errors("CreateResponse", body)
    assert not problems, f"request does not match CreateResponse: {problems}\n{json.dumps(body)[:2000]}"


def assert_valid_event(event: dict[str, Any]) -> None:
    problems = errors("ResponseStreamEvent", event)
    assert not problems, f"{event.get('type')} does not match ResponseStreamEvent: {problems}\n{json.dumps(event)[:2000]}"
