"""Input validation for the API: request bodies and query parameters.

Serializers here only check shape and bounds; every rule of the domain (message size,
blank text, client_id reuse, who may do what) is enforced by the services and
`principals`, so the API and the other doors agree. The response shapes are documented
in `conversations.api.schema_shapes`.
"""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.api.schema_shapes import UPDATABLE_STATUSES
from conversations.conf import platform_setting
from conversations.models import Agent
from conversations.models.conversation import Channel, Status
from conversations.services.ratings import MAX_COMMENT_CHARS

METADATA_MAX_BYTES = 16 * 1024
METADATA_MAX_DEPTH = 16
MAX_INT = 2**31 - 1


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@extend_schema_field({"type": "object", "additionalProperties": {}})
class MetadataField(serializers.JSONField):
    """A JSON object of at most 16 KiB, nested at most 16 levels."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be a JSON object")
        if _depth(data) > METADATA_MAX_DEPTH:
            raise serializers.ValidationError(f"may nest at most {METADATA_MAX_DEPTH} levels")
        if len(json.dumps(data, ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
            raise serializers.ValidationError(f"must encode to at most {METADATA_MAX_BYTES} bytes")
        return data


class StrictCharField(serializers.CharField):
    """A body text field that refuses numbers and booleans instead of coercing them to
    text (DRF's CharField would), so requests that break the schema get a 400."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A body integer that refuses strings, floats and booleans ("4", 4.0, true) instead
    of coercing them, as the websocket door's service does."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class ConversationCreateSerializer(serializers.Serializer):
    agent = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_INT,
        help_text="Agent id; the default agent when omitted. API keys and staff only.",
    )
    customer_id = StrictCharField(
        required=False, allow_blank=True, max_length=255,
        help_text="Your id for the customer (an external user id). Omitted: an anonymous visitor.",
    )
    customer_email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    customer_name = StrictCharField(required=False, allow_blank=True, max_length=200)
    metadata = MetadataField(required=False, help_text="Any JSON object (at most 16 KiB).")

    def validate_agent(self, value: int) -> Agent:
        agent = Agent.objects.filter(pk=value).first()
        if agent is None:
            raise serializers.ValidationError("unknown agent")
        return agent


class ConversationFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    agent = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT)
    customer = serializers.CharField(required=False, max_length=255, help_text="Exact customer id.")
    channel = serializers.ChoiceField(choices=Channel.choices, required=False)
    updated_since = serializers.DateTimeField(
        required=False, help_text="Only conversations updated at or after this ISO 8601 time."
    )


class ConversationUpdateSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=UPDATABLE_STATUSES,
        help_text="Resolve or reopen. To wait on staff, use the handoff endpoint.",
    )


class HandoffSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, max_length=500)


class RatingCreateSerializer(serializers.Serializer):
    score = StrictIntegerField(min_value=1, max_value=5, help_text="1 (very unhappy) to 5 (very happy).")
    comment = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_COMMENT_CHARS, help_text="Optional, in the customer's words."
    )


class MessageListQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_INT, default=0,
        help_text="Only messages with a greater seq (catch up from the last seq you saw).",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class MessageCreateSerializer(serializers.Serializer):
    text = StrictCharField(
        trim_whitespace=False, allow_blank=True,
        help_text="The customer's message. Longer than the configured limit "
        "(SUPPORT_MAX_MESSAGE_CHARS, default 8000 characters) answers 413.",
    )
    client_id = StrictCharField(
        required=False, allow_blank=True, max_length=100, trim_whitespace=False,
        help_text="Your id for this message: posting it again returns the first message "
        "and its turn instead of a duplicate. The Idempotency-Key header does the same.",
    )
    metadata = MetadataField(required=False)


class WaitQuerySerializer(serializers.Serializer):
    wait = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_INT, default=0,
        help_text="Seconds to wait for the turn to finish before answering (capped by the "
        "server, default cap 30). 0 answers as soon as the turn is queued.",
    )

    def validate_wait(self, value: int) -> int:
        return min(value, int(platform_setting("API_MAX_WAIT_SECONDS")))
