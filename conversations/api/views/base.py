"""What every API view shares: authentication, throttling, JSON in and out, the one
error shape, and the answer modes of endpoints that start a turn (poll, wait, stream)."""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from django.utils.cache import patch_vary_headers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from conversations.api.auth import (
    ApiKeyAuthentication,
    StaffSessionAuthentication,
    VisitorTokenAuthentication,
)
from conversations.api.errors import api_exception_handler
from conversations.api.parsing import ApiContentNegotiation, ApiJSONParser
from conversations.api.principals import ANONYMOUS, Principal
from conversations.api.serializers import WaitQuerySerializer
from conversations.api.throttling import PrincipalRateThrottle


class IsIdentified(BasePermission):
    """Any caller with credentials; anonymous callers get 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Principal)


class ApiView(APIView):
    authentication_classes = [ApiKeyAuthentication, VisitorTokenAuthentication, StaffSessionAuthentication]
    permission_classes = [IsIdentified]
    throttle_classes = [PrincipalRateThrottle]
    parser_classes = [ApiJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ApiContentNegotiation

    def get_exception_handler(self) -> Any:
        return api_exception_handler

    @property
    def principal(self) -> Principal:
        auth = self.request.auth
        return auth if isinstance(auth, Principal) else ANONYMOUS

    def valid(self, serializer_class: type[Serializer], data: Any) -> dict[str, Any]:
        if isinstance(data, QueryDict):
            repeated = {key: "may be given only once" for key, values in data.lists() if len(values) > 1}
            if repeated:
                raise ValidationError(repeated)
            data = data.dict()
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def body(self, serializer_class: type[Serializer]) -> dict[str, Any]:
        return self.valid(serializer_class, self.request.data)

    def answer_mode(self) -> tuple[str, int]:
        """("stream", 0) for `Accept: text/event-stream`, ("wait", seconds) for
        `?wait=N`, else ("poll", 0)."""
        if "text/event-stream" in self.request.META.get("HTTP_ACCEPT", ""):
            return "stream", 0
        wait = self.valid(WaitQuerySerializer, self.request.query_params)["wait"]
        return ("wait", wait) if wait > 0 else ("poll", 0)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        patch_vary_headers(response, ["Authorization", "Accept"])
        return response
