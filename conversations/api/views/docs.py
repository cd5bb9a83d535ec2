"""Swagger UI's static assets (from drf-spectacular-sidecar), served by the project so
the interactive docs work with no internet access and no separate static file server."""

from __future__ import annotations

from pathlib import Path

import drf_spectacular_sidecar
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.static import serve

SIDECAR_ROOT = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"


def docs_asset(request: HttpRequest, path: str) -> HttpResponseBase:
    try:
        response = serve(request, path, document_root=str(SIDECAR_ROOT))
    except SuspiciousFileOperation:
        raise Http404("Not found.") from None
    response["Cache-Control"] = "public, max-age=86400"
    return response
