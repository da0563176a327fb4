"""The publishing API: products, product templates, publish one image, publish a batch.

Views validate input and call publishing.services; errors become coded responses in api.exceptions.
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import VersionedPaginationMixin
from api.permissions import ActionPermission, ActionPolicyMixin
from core.actors import api_actor
from publishing import services
from publishing.api import serializers as s
from publishing.catalog import fit_warnings
from publishing.models import Product, ProductTemplate

PUBLISH = ["publishing.publish_image"]


@extend_schema_view(list=extend_schema(parameters=[s.ProductFilterSerializer]))
@extend_schema(tags=["products"])
class ProductViewSet(ActionPolicyMixin, VersionedPaginationMixin, viewsets.ReadOnlyModelViewSet):
    """Products, newest first; filter with `status`, `platform`, `image`."""

    serializer_class = s.ProductSerializer
    action_permissions = {"list": ["publishing.view_product"], "retrieve": ["publishing.view_product"],
                          "retry": PUBLISH}

    def get_queryset(self) -> QuerySet[Product]:
        queryset = Product.objects.prefetch_related("history")
        if self.action != "list":
            return queryset
        params = s.ProductFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        for name, field in (("status", "status"), ("platform", "platform"), ("image", "image_id")):
            if params.validated_data.get(name):
                queryset = queryset.filter(**{field: params.validated_data[name]})
        return queryset

    @extend_schema(summary="Retry a failed product", request=None, responses={202: s.ProductSerializer})
    @action(detail=True, methods=["post"], rate_tier="publishing")
    def retry(self, request: Request, *args, **kwargs) -> Response:
        product = services.product_retry(product_id=kwargs["pk"], actor=api_actor(request))
        return Response(s.ProductSerializer(product).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["product-templates"])
class ProductTemplateViewSet(
    ActionPolicyMixin,
    VersionedPaginationMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ProductTemplateSerializer
    queryset = ProductTemplate.objects.all()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_permissions = {
        "list": ["publishing.view_producttemplate"],
        "retrieve": ["publishing.view_producttemplate"],
        "create": ["publishing.add_producttemplate"],
        "partial_update": ["publishing.change_producttemplate"],
        "destroy": ["publishing.delete_producttemplate"],
    }
    action_rate_tiers = {"create": "publishing", "partial_update": "publishing", "destroy": "publishing"}

    def get_queryset(self) -> QuerySet[ProductTemplate]:
        # The cursor paginator of v2 orders by -created_at; v1 keeps the model's name order.
        return ProductTemplate.objects.all()

    def perform_create(self, serializer: s.ProductTemplateSerializer) -> None:
        serializer.instance = services.product_template_create(
            data=serializer.validated_data, actor=api_actor(self.request)
        )

    def perform_update(self, serializer: s.ProductTemplateSerializer) -> None:
        serializer.instance = services.product_template_update(
            template_id=serializer.instance.id, data=serializer.validated_data, actor=api_actor(self.request)
        )

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        services.product_template_delete(template_id=kwargs["pk"], actor=api_actor(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ImagePublishView(APIView):
    """`POST images/{id}/publish`: start publishing one approved, failed or published image with one or more
    templates → 202, the products started (the first one's fields at the top, as before, and `products`)."""

    permission_classes = [ActionPermission]
    action_permissions = {"post": PUBLISH}
    rate_tier = "publishing"

    @extend_schema(tags=["images"], summary="Publish", request=s.PublishInputSerializer,
                   parameters=[OpenApiParameter("image_id", str, OpenApiParameter.PATH, description="Image id")],
                   responses={202: s.PublishResultSerializer,
                              409: OpenApiResponse(description="Image not publishable, or live on every template")})
    def post(self, request: Request, image_id: str, *args, **kwargs) -> Response:
        data = s.PublishInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        products = services.image_publish_products(
            image_id=image_id,
            actor=api_actor(request),
            template_id=values.get("template") or None,
            template_ids=values.get("templates") or None,
            title=values.get("title"),
            description=values.get("description"),
            price_cents=values.get("price_cents"),
        )
        products = list(Product.objects.prefetch_related("history").select_related("image", "template")
                        .filter(id__in=[p.id for p in products]).order_by("created_at", "id"))
        image = products[0].image
        warnings = fit_warnings(width=image.width or 0, height=image.height or 0,
                                templates=[p.template for p in products if p.template is not None])
        body = s.PublishResultSerializer(products[0], context={"products": products, "warnings": warnings}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BatchPublishView(APIView):
    """`POST batch/publish`: start publishing many images; per-id result like the other batch actions."""

    permission_classes = [ActionPermission]
    action_permissions = {"post": PUBLISH}
    rate_tier = "publishing"

    @extend_schema(tags=["batch"], summary="Publish many", request=s.BatchPublishInputSerializer,
                   responses={200: OpenApiResponse(description="`{successful, failed, skipped, counts}`")})
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = s.BatchPublishInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.images_publish(
            image_ids=values["image_ids"],
            actor=api_actor(request),
            template_id=values.get("template") or None,
            template_ids=values.get("templates") or None,
            atomic=values["atomic"],
            batch_action="publish",
        )
        return Response(result.as_dict())
