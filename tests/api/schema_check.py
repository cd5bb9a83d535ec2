"""Validate real responses against the API's generated OpenAPI schema (via schemathesis)."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import requests
import schemathesis
from schemathesis.core.transport import Response as SchemathesisResponse


@functools.cache
def openapi_document() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@functools.cache
def loaded_schema() -> Any:
    return schemathesis.openapi.from_dict(openapi_document())


def _converted(response: Any, method: str, path: str) -> SchemathesisResponse:
    if hasattr(response, "streaming_content") and getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    headers = {name.lower(): [value] for name, value in response.headers.items()}
    request = requests.Request(method=method.upper(), url=f"http://testserver{path}").prepare()
    return SchemathesisResponse(
        status_code=response.status_code, headers=headers, content=content, request=request,
        elapsed=0.0, verify=False,
    )


def assert_matches_schema(response: Any, method: str, path: str) -> None:
    """The status code is documented for this operation and the body matches its schema.
    Accepts a Django/DRF test response or an httpx response."""
    path_only = path.split("?", 1)[0]
    operation = loaded_schema().find_operation_by_path(method.upper(), path_only)
    assert operation is not None, f"{method} {path_only} is not in the schema"
    documented = {str(code) for code in operation.definition.raw["responses"]}
    assert str(response.status_code) in documented, (
        f"{method} {path_only} answered {response.status_code}, documented: {sorted(documented)}"
    )
    if not isinstance(response, httpx.Response):
        response = _converted(response, method, path_only)
    operation.validate_response(response)
