"""Request bodies and content negotiation for the API.

`ApiJSONParser` enforces the body size limit (413) before reading more than the limit,
and turns every kind of bad JSON into a 400: syntax errors, invalid UTF-8, NaN and
Infinity, nesting deep enough to exhaust the parser, and lone UTF-16 surrogates (valid
JSON escapes that no database can store). `ApiContentNegotiation` answers JSON to any
`Accept` header: the event stream is chosen by the view, not by a renderer, and an
error answers JSON even to a client that asked for `text/event-stream`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser
from rest_framework.renderers import BaseRenderer

from conversations.conf import platform_setting
from conversations.errors import PayloadTooLarge

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class ApiJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        limit = platform_setting("API_MAX_BODY_BYTES")
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("Malformed JSON: the body is not valid UTF-8.")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"Malformed JSON: {exc}" if isinstance(exc, ValueError) else "Malformed JSON: nested too deeply.")
        if _SURROGATE_ESCAPE.search(text):
            try:
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise ParseError("Malformed JSON: a string contains an unpaired UTF-16 surrogate.")
        return data


class ApiContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Any, renderers: Iterable[BaseRenderer], format_suffix: str | None = None) -> Any:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type
