"""The webhooks API: subscriptions (with rotate-secret, ping and their deliveries) and single deliveries.

A `clients` user sees and changes only its own subscriptions and their deliveries; another's answer
404, as if they did not exist. Superusers see all of them. Views call webhooks.services, which apply
the same rule; errors become coded responses in api.exceptions.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from api.pagination import VersionedPaginationMixin
from api.permissions import ActionPolicyMixin
from core.actors import api_actor
from webhooks import services
from webhooks.api import serializers as s
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

VIEW = ["webhooks.view_webhooksubscription"]
CHANGE = ["webhooks.change_webhooksubscription"]
# Managing subscriptions has no tier of its own; it shares the tier of the other small writes.
WRITE_TIER = "approval"
ID_PARAMETER = OpenApiParameter("id", str, OpenApiParameter.PATH, description="Webhook subscription id")


def deliveries_queryset(deliveries: QuerySet[WebhookDelivery]) -> QuerySet[WebhookDelivery]:
    """What DeliverySerializer reads: the event's type (not its payload) and the attempts in order."""
    return deliveries.select_related("event").defer("event__data").prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number"))
    )


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions",
                       description="Your own subscriptions, newest first (a superuser sees everyone's)."),
    retrieve=extend_schema(summary="A webhook subscription", parameters=[ID_PARAMETER]),
    create=extend_schema(
        summary="Subscribe a URL to events",
        description="Nothing is sent when a subscription is created; `POST webhooks/{id}/ping` sends a test "
        "event. The answer is the only one besides rotate-secret that shows the `secret`.",
        request=s.SubscriptionInputSerializer,
        responses={201: s.SubscriptionWithSecretSerializer},
    ),
    partial_update=extend_schema(
        summary="Change a webhook subscription",
        description="`is_active: false` ends its pending deliveries as `failed`; `is_active: true` re-enables "
        "it (clearing the failure record), after which they can be redelivered. Nothing is sent.",
        parameters=[ID_PARAMETER],
        request=s.SubscriptionInputSerializer,
        responses={200: s.SubscriptionSerializer},
    ),
    destroy=extend_schema(summary="Delete a webhook subscription with its deliveries", parameters=[ID_PARAMETER],
                          responses={204: None}),
    rotate_secret=extend_schema(
        summary="Rotate the signing secret",
        description="Answers the new `secret`. The old one keeps signing (a second `webhook-signature`) for "
        "`WEBHOOK_ROTATION_GRACE` seconds.",
        parameters=[ID_PARAMETER], request=None, responses={200: s.SubscriptionWithSecretSerializer},
    ),
    ping=extend_schema(
        summary="Send a webhook.ping",
        description="Queues one `webhook.ping` delivery for this subscription, whatever its `events` say.",
        parameters=[ID_PARAMETER], request=None,
        responses={202: s.DeliverySerializer,
                   409: OpenApiResponse(description="INVALID_STATE: the subscription is disabled")},
    ),
    deliveries=extend_schema(
        summary="Deliveries of a webhook subscription",
        description="Newest first, with their attempts; filter with `status`.",
        parameters=[ID_PARAMETER, s.DeliveryFilterSerializer],
        responses={200: s.DeliverySerializer(many=True)},
    ),
)
@extend_schema(tags=["webhooks"])
class WebhookSubscriptionViewSet(
    ActionPolicyMixin,
    VersionedPaginationMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.SubscriptionSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "list": VIEW,
        "retrieve": VIEW,
        "deliveries": VIEW,
        "create": ["webhooks.add_webhooksubscription"],
        "partial_update": CHANGE,
        "rotate_secret": CHANGE,
        "ping": CHANGE,
        "destroy": ["webhooks.delete_webhooksubscription"],
    }
    action_rate_tiers = {"create": WRITE_TIER, "partial_update": WRITE_TIER, "destroy": WRITE_TIER}

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return services.subscriptions_of(api_actor(self.request))

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = s.SubscriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription, _ = services.subscription_create(data=data.validated_data, actor=api_actor(request))
        location = reverse("webhook-detail", kwargs={"pk": subscription.id}, request=request)
        body = s.SubscriptionWithSecretSerializer(subscription).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": location})

    def partial_update(self, request: Request, *args, **kwargs) -> Response:
        data = s.SubscriptionInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        subscription = services.subscription_update(
            subscription_id=kwargs["pk"], data=data.validated_data, actor=api_actor(request)
        )
        return Response(s.SubscriptionSerializer(subscription).data)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        services.subscription_delete(subscription_id=kwargs["pk"], actor=api_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"], url_path="rotate-secret", url_name="rotate-secret", rate_tier=WRITE_TIER)
    def rotate_secret(self, request: Request, *args, **kwargs) -> Response:
        subscription, _ = services.subscription_rotate_secret(subscription_id=kwargs["pk"], actor=api_actor(request))
        return Response(s.SubscriptionWithSecretSerializer(subscription).data)

    @action(detail=True, methods=["post"], rate_tier=WRITE_TIER)
    def ping(self, request: Request, *args, **kwargs) -> Response:
        delivery = services.subscription_ping(subscription_id=kwargs["pk"], actor=api_actor(request))
        delivery = deliveries_queryset(WebhookDelivery.objects.all()).get(id=delivery.id)
        return Response(s.DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @action(detail=True, methods=["get"])
    def deliveries(self, request: Request, *args, **kwargs) -> Response:
        subscription = self.get_object()
        params = s.DeliveryFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        deliveries = deliveries_queryset(subscription.deliveries.all())
        if params.validated_data.get("status"):
            deliveries = deliveries.filter(status=params.validated_data["status"])
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(s.DeliverySerializer(page, many=True).data)


@extend_schema_view(
    retrieve=extend_schema(summary="A webhook delivery with its attempts",
                           parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="Delivery id")]),
    redeliver=extend_schema(
        summary="Redeliver",
        description="Queues the delivery again: the same `event_id`, a new attempt. Refused (409) while it is "
        "being sent or while its subscription is disabled.",
        parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="Delivery id")],
        request=None,
        responses={202: s.DeliverySerializer},
    ),
)
@extend_schema(tags=["webhooks"])
class WebhookDeliveryViewSet(ActionPolicyMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A delivery is visible to, and redelivered by, whoever may see its subscription."""

    serializer_class = s.DeliverySerializer
    action_permissions = {"retrieve": VIEW, "redeliver": CHANGE}

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        return deliveries_queryset(services.deliveries_of(api_actor(self.request)))

    @action(detail=True, methods=["post"], rate_tier=WRITE_TIER)
    def redeliver(self, request: Request, *args, **kwargs) -> Response:
        delivery = services.delivery_redeliver(delivery_id=kwargs["pk"], actor=api_actor(request))
        return Response(self.get_serializer(self.get_queryset().get(id=delivery.id)).data,
                        status=status.HTTP_202_ACCEPTED)
