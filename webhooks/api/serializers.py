"""Input and output shapes of the webhooks API (CONTRACT §7)."""

from __future__ import annotations

from rest_framework import serializers

from api.fields import CleanCharField, StrictBooleanField, choice_field
from webhooks.models import DeliveryStatus, EventType, WebhookAttempt, WebhookDelivery, WebhookSubscription
from webhooks.services import SUBSCRIBABLE

EVENTS_HELP = f'Event names, or `["*"]` for all of them (the default). Allowed: {", ".join(SUBSCRIBABLE)}.'
SUBSCRIPTION_FIELDS = ["id", "url", "events", "description", "is_active", "created_at", "consecutive_failures",
                       "disabled_reason"]


# --- Input -------------------------------------------------------------------------------------

class SubscriptionInputSerializer(serializers.Serializer):
    """`POST webhooks` and `PATCH webhooks/{id}`: JSON types here, the rules in `subscription_validate`.

    The admin and the API refuse the same URLs and event names with the same field messages.
    """

    # The service checks scheme, host and every address the host resolves to; a URL may carry `on…=`.
    url = CleanCharField(max_length=2000, fold_newlines=False, allow_markup=True,
                         help_text="An http(s) URL whose host resolves to public addresses only.")
    events = serializers.ListField(
        child=CleanCharField(max_length=40, fold_newlines=False, allow_markup=True),
        required=False, max_length=len(SUBSCRIBABLE) + 1, help_text=EVENTS_HELP,
    )
    description = CleanCharField(max_length=500, required=False, allow_blank=True)
    is_active = StrictBooleanField(
        required=False, help_text="`false` stops deliveries (pending ones end `failed`); `true` re-enables."
    )


class DeliveryFilterSerializer(serializers.Serializer):
    """Query parameters of `GET webhooks/{id}/deliveries`."""

    status = choice_field(DeliveryStatus.values, required=False)


# --- Output ------------------------------------------------------------------------------------

class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as every read shows it: never with its secret."""

    events = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookSubscription
        fields = SUBSCRIPTION_FIELDS
        read_only_fields = fields


class SubscriptionWithSecretSerializer(SubscriptionSerializer):
    """The answers of create and rotate-secret, the only ones that carry the secret."""

    secret = serializers.CharField(
        read_only=True, help_text="`whsec_` + base64 of 32 random bytes; shown only now, store it."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SUBSCRIPTION_FIELDS[:5], "secret", *SUBSCRIPTION_FIELDS[5:]]
        read_only_fields = fields


class AttemptSerializer(serializers.ModelSerializer):
    """One HTTP try: what the receiver answered (status code, body up to 16 KB) or why it failed."""

    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error", "response_body"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    """One event for one subscription, with every attempt made for it (oldest first)."""

    event_id = serializers.CharField(read_only=True)
    event_type = serializers.ChoiceField(source="event.event_type", choices=EventType.choices, read_only=True)
    subscription = serializers.CharField(source="subscription_id", read_only=True)
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "subscription", "status", "attempts", "next_attempt_at",
                  "created_at", "delivered_at"]
        read_only_fields = fields
