"""OpenAPI descriptions of the API's responses (documentation serializers).

The views render with `conversations.api.shapes`; these serializers only describe
those dicts for drf-spectacular. The test suite validates every endpoint's real
responses against the generated schema, so the two cannot drift apart silently.
"""

from __future__ import annotations

from rest_framework import serializers

from conversations.models.conversation import Channel, CustomerKind, Status
from conversations.models.message import MessageKind
from conversations.models.turn import TurnStatus, TurnTrigger

UPDATABLE_STATUSES = [(Status.OPEN, "Open (reopen)"), (Status.RESOLVED, "Resolved")]


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. not_found, invalid, too_large.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    # The error body's key is "fields"; DRF's metaclass moves declared fields off the class.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="Problem per input field."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = serializers.UUIDField()
    seq = serializers.IntegerField(help_text="Position in the conversation: strictly increasing, gap-free.")
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    text = serializers.CharField(help_text="Text, or a function call's output. Always plain text.")
    client_id = serializers.CharField(allow_null=True)
    turn = serializers.UUIDField(allow_null=True, help_text="The turn that produced this item.")
    created_at = serializers.DateTimeField()
    metadata = serializers.DictField()
    call_id = serializers.CharField(required=False, help_text="Function call and output items only.")
    tool_name = serializers.CharField(required=False, help_text="Function call and output items only.")
    arguments = serializers.CharField(required=False, help_text="Function call items only: JSON arguments.")
    activity = serializers.CharField(
        required=False, help_text="Visitors only, function call items: what the step does, in words."
    )
    ok = serializers.BooleanField(
        required=False,
        help_text="Visitors only, function output items: whether the step worked (visitors get no `text`).",
    )


class RatingSerializer(serializers.Serializer):
    conversation = serializers.UUIDField()
    resolution = serializers.IntegerField(help_text="Which resolution of the conversation this rates (1 = the first).")
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class MessageListSerializer(serializers.Serializer):
    results = MessageSerializer(many=True)
    has_more = serializers.BooleanField(help_text="More messages follow: ask again with after=last_seq.")
    last_seq = serializers.IntegerField(allow_null=True, help_text="The seq of the last message returned.")


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    reasoning_tokens = serializers.IntegerField()


class ConversationUsageSerializer(UsageSerializer):
    cost = serializers.CharField(help_text="Decimal, in the price table's currency.")


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    agent = serializers.IntegerField()
    customer_kind = serializers.ChoiceField(choices=CustomerKind.choices)
    customer_id = serializers.CharField()
    customer_email = serializers.CharField()
    customer_name = serializers.CharField()
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    ai_paused = serializers.BooleanField(help_text="A person has taken over; the AI does not answer.")
    metadata = serializers.DictField()
    message_count = serializers.IntegerField()
    last_seq = serializers.IntegerField(help_text="Seq of the newest message (0 when empty).")
    last_message_preview = serializers.CharField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    has_failed_turn = serializers.BooleanField()
    turn_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    usage = ConversationUsageSerializer(
        allow_null=True, help_text="Tokens and cost: staff and API keys with the audit scope only."
    )


class ConversationCreatedSerializer(ConversationSerializer):
    visitor_token = serializers.CharField(
        help_text="Signed token for this one conversation: send 'Authorization: Visitor <token>'."
    )
    resumed_imported = serializers.BooleanField(
        help_text="True when the customer_id's imported conversation was resumed instead of a new one started."
    )


class TurnAuditSerializer(serializers.Serializer):
    requests = serializers.ListField(child=serializers.DictField(), help_text="Every request body sent, exactly.")
    history = serializers.ListField(
        child=serializers.DictField(), help_text="Selected history items with reason and score."
    )
    history_budget = serializers.IntegerField()
    history_tokens = serializers.IntegerField()
    response_ids = serializers.ListField(child=serializers.CharField())
    partial_text = serializers.CharField(help_text="Text streamed before a failure; never an answer.")
    redactions = serializers.DictField(
        allow_null=True,
        help_text='PII redaction, when the agent had it on: {"enabled": true, "kinds": {"EMAIL": {"values": 1, '
        '"replacements": 2}}} (the requests above are as sent, with placeholders). Never the values.',
    )
    guardrails = serializers.ListField(
        child=serializers.DictField(),
        help_text='Guardrail refusals: [{"stage": "input" or "output", "guard": "blocklist", "action": '
        '"refuse", "label": "OFF_TOPIC"}]; empty when none refused. Never the matched text.',
    )
    usage = UsageSerializer()
    cost = serializers.CharField()
    tool_rounds = serializers.IntegerField()
    time_to_first_token_ms = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    triggered_by = serializers.CharField(allow_null=True, help_text="Staff username for staff retries.")


class TurnSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    conversation = serializers.UUIDField()
    user_message_seq = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=TurnStatus.choices)
    attempt = serializers.IntegerField()
    model = serializers.CharField()
    error_code = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    trigger = serializers.ChoiceField(choices=TurnTrigger.choices)
    retry_of = serializers.UUIDField(allow_null=True)
    cancel_requested = serializers.BooleanField()
    audit = TurnAuditSerializer(
        allow_null=True, help_text="The full audit: staff and API keys with the audit scope only."
    )


class PostResultSerializer(serializers.Serializer):
    message = MessageSerializer(help_text="The stored customer message.")
    turn = TurnSerializer(allow_null=True, help_text="Its turn; null while a person has taken over.")
    created = serializers.BooleanField(help_text="False when client_id / Idempotency-Key was seen before.")
    answer = MessageSerializer(many=True, help_text="Items the turn stored so far (tool calls, the answer).")


ENUM_NAME_OVERRIDES = {
    "ConversationStatusEnum": "conversations.models.conversation.Status",
    "StatusUpdateEnum": "conversations.api.schema_shapes.UPDATABLE_STATUSES",
    "ChannelEnum": "conversations.models.conversation.Channel",
    "CustomerKindEnum": "conversations.models.conversation.CustomerKind",
    "MessageKindEnum": "conversations.models.message.MessageKind",
    "TurnStatusEnum": "conversations.models.turn.TurnStatus",
    "TurnTriggerEnum": "conversations.models.turn.TurnTrigger",
}
