"""API key services: issue (the only time the full key exists), authenticate, revoke.

Key format: `sk_<prefix>_<secret>`. The prefix (10 characters) finds the row; the
SHA-256 digest of the whole key is compared in constant time. `last_used_at` is
written at most once a minute so authentication stays a single indexed read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from conversations.api.models import ApiClient, ApiKey, Scope
from conversations.errors import InvalidInput

KEY_PREFIX = "sk_"
_PREFIX_LENGTH = 10
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
_TOUCH_INTERVAL = timedelta(minutes=1)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def clean_scopes(scopes: Any) -> list[str]:
    if not isinstance(scopes, list | tuple) or any(s not in Scope.values for s in scopes):
        raise InvalidInput(
            f"scopes must be a list drawn from {', '.join(Scope.values)}.", fields={"scopes": "invalid"}
        )
    return sorted(set(scopes))


def api_key_issue(*, key: ApiKey) -> str:
    """Give an unsaved `ApiKey` its secret, save it, and return the full key (shown
    once; only its digest is stored)."""
    if key.pk is not None:
        raise ValueError("api_key_issue takes a new, unsaved key")
    key.scopes = clean_scopes(key.scopes or [])
    for _ in range(5):
        prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(_PREFIX_LENGTH))
        if not ApiKey.objects.filter(prefix=prefix).exists():
            break
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key.prefix = prefix
    key.secret_hash = _digest(raw)
    key.save()
    return raw


def api_key_create(
    *,
    client: ApiClient,
    name: str,
    scopes: list[str],
    created_by: Any = None,
    expires_at: datetime | None = None,
    rate_limit: str = "",
) -> tuple[ApiKey, str]:
    key = ApiKey(
        client=client,
        name=name,
        scopes=scopes,
        created_by=created_by if getattr(created_by, "pk", None) else None,
        expires_at=expires_at,
        rate_limit=rate_limit,
    )
    with transaction.atomic():
        raw = api_key_issue(key=key)
    return key, raw


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    """Revoke now; requests with the key fail from the next one on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=key.revoked_at)
    return key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key `raw` names, or None (unknown, wrong secret, revoked, expired)."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    prefix, sep, _secret = raw[len(KEY_PREFIX):].partition("_")
    if not sep or len(prefix) != _PREFIX_LENGTH:
        return None
    key = ApiKey.objects.select_related("client").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(raw)) or not key.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > _TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
