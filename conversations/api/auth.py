"""DRF authentication for the three kinds of API caller.

- `Authorization: Bearer sk_...` — an API key (`ApiKeyAuthentication`).
- `Authorization: Visitor <token>` — the signed visitor token returned when a
  conversation is created anonymously (`VisitorTokenAuthentication`).
- A Django session of an active staff user, with CSRF (`StaffSessionAuthentication`).

Each sets `request.auth` to a `Principal`; a request with no credentials is anonymous.
Credentials that are present but wrong fail with 401 rather than falling back to
anonymous, so a typo in a key is never silently a visitor.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from conversations.access import visitor_token_conversation_id
from conversations.api.keys import api_key_authenticate
from conversations.api.principals import Principal


def _credentials(request: Request, keyword: str) -> str | None:
    """The credentials after `keyword` in the Authorization header, or None."""
    header = get_authorization_header(request).split()
    if not header or header[0].lower() != keyword.lower().encode():
        return None
    if len(header) != 2:
        raise AuthenticationFailed(f"Invalid {keyword} header: expected '{keyword} <credentials>'.")
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed(f"Invalid {keyword} credentials.")


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        raw = _credentials(request, self.keyword)
        if raw is None:
            return None
        key = api_key_authenticate(raw)
        if key is None:
            raise AuthenticationFailed("Invalid, expired or revoked API key.")
        return AnonymousUser(), Principal(kind="key", key=key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class VisitorTokenAuthentication(BaseAuthentication):
    keyword = "Visitor"

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        token = _credentials(request, self.keyword)
        if token is None:
            return None
        conversation_id = visitor_token_conversation_id(token)
        if conversation_id is None:
            raise AuthenticationFailed("Invalid or expired visitor token.")
        return AnonymousUser(), Principal(kind="visitor", token=token, conversation_id=conversation_id)


class StaffSessionAuthentication(SessionAuthentication):
    """A logged-in staff member (CSRF enforced). Non-staff sessions are ignored: the
    API does not know customers by Django account."""

    def authenticate(self, request: Request) -> tuple[Any, Principal] | None:
        user = getattr(request._request, "user", None)
        if not user or not user.is_active or not user.is_staff:
            return None
        self.enforce_csrf(request)
        return user, Principal(kind="staff", user=user)
