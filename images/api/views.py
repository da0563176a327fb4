"""The images API: generate, generations, images (list, upload, detail, bytes, review), batches, stats.

Views validate input, call the services in images/ (never changing a status themselves) and shape
the output; errors become coded responses in api.exceptions.
"""

from __future__ import annotations

import functools
import mimetypes
from collections.abc import Callable

from django.db import router
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from api.pagination import VersionedPaginationMixin
from api.permissions import ActionPermission, ActionPolicyMixin
from api.renderers import FastJSONRenderer
from api.throttling import ReadsBeforeRateLimitMixin, rate_limit_settle
from core.actors import api_actor
from core.db.keyed import KeysFrom, values_in_later
from core.db.pipeline import pipelined, pipelined_transaction
from core.errors import BusyError
from images import relations, selectors, services
from images.api import serializers as s
from images.generation import generation_cancel, generation_create, generations_of
from images.intake import image_intake
from images.models import Generation, Image, ImageSource
from images.validation import GenerateInputSerializer

VIEW_IMAGE = ["images.view_image"]
REVIEW_IMAGE = ["images.review_image"]
DELETE_IMAGE = ["images.delete_image"]


class BinaryRenderer(BaseRenderer):
    """Lets `Accept: image/*` through content negotiation for the file endpoints (bytes bypass rendering)."""

    media_type = "image/*"
    format = "bin"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


# --- Generations -------------------------------------------------------------------------------

class GenerateView(APIView):
    """`POST generate`: validate, record the generation and queue it for the worker."""

    permission_classes = [ActionPermission]
    action_permissions = {"post": ["images.add_generation"]}
    rate_tier = "generation"

    @extend_schema(
        operation_id="generate",
        tags=["generations"],
        request=GenerateInputSerializer,
        responses={202: OpenApiResponse(s.GenerationSerializer, description="Queued; `Location` names it.")},
        summary="Start a generation",
        description="Queues `batch_size` images for the worker. A prompt hash seen before answers 409 "
        "`DUPLICATE_PROMPT` with `details.existing_generation_id` unless `allow_duplicate` is true.",
    )
    def post(self, request: Request, *args, **kwargs) -> Response:
        data = GenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        generation = generation_create(data=data.validated_data, actor=api_actor(request))
        generation = generations_queryset().get(id=generation.id)
        location = reverse("generation-detail", kwargs={"pk": generation.id}, request=request)
        body = s.GenerationSerializer(generation, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


def generations_queryset(generations: QuerySet[Generation] | None = None) -> QuerySet[Generation]:
    return (Generation.objects.all() if generations is None else generations).prefetch_related(
        Prefetch("images", queryset=Image.objects.only("id", "generation_id").order_by("batch_index", "created_at")),
        "history",
    )


@extend_schema_view(
    list=extend_schema(summary="List generations", parameters=[s.GenerationFilterSerializer]),
    retrieve=extend_schema(summary="A generation"),
    cancel=extend_schema(summary="Cancel a queued or running generation", request=None),
)
@extend_schema(tags=["generations"])
class GenerationViewSet(ActionPolicyMixin, VersionedPaginationMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.GenerationSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = ["created_at"]
    ordering = ["-created_at", "-id"]
    action_permissions = {
        "list": ["images.view_generation"],
        "retrieve": ["images.view_generation"],
        "cancel": ["images.add_generation"],
    }

    def get_queryset(self) -> QuerySet[Generation]:
        # A client sees only its own generations; reviewers and above see every one.
        queryset = generations_queryset(generations_of(api_actor(self.request)))
        if self.action == "list":
            params = s.GenerationFilterSerializer(data=self.request.query_params)
            params.is_valid(raise_exception=True)
            if "status" in params.validated_data:
                queryset = queryset.filter(status=params.validated_data["status"])
        return queryset

    @action(detail=True, methods=["post"], rate_tier="generation")
    def cancel(self, request: Request, *args, **kwargs) -> Response:
        generation = generation_cancel(generation_id=kwargs["pk"], actor=api_actor(request))
        generation = generations_queryset().get(id=generation.id)
        return Response(self.get_serializer(generation).data)


# --- Images ------------------------------------------------------------------------------------

class ServiceUnavailable(exceptions.APIException):
    """503 SERVICE_UNAVAILABLE with `Retry-After` (the API's error handler turns `wait` into the header)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "SERVICE_UNAVAILABLE"

    def __init__(self, busy: BusyError) -> None:
        super().__init__(busy.message)
        self.wait = busy.retry_after
        self.error_details = {**busy.details, "retry_after": busy.retry_after}


IMAGE_BYTES = {(200, "image/png"): OpenApiTypes.BINARY, (200, "image/jpeg"): OpenApiTypes.BINARY}
REVIEW_RESPONSES = {200: s.ImageSerializer}


@functools.cache
def _all_images_values(columns: tuple[str, ...]) -> QuerySet[Image]:
    """`images_all().values(*columns)`, built once and cloned per request (building twenty columns' values
    cost a list page more than cloning the query does)."""
    return selectors.images_all().values(*columns)


@extend_schema_view(
    list=extend_schema(
        summary="List images",
        parameters=[s.ImageFilterSerializer],
        description="Filters `status`, `generation`, `search` (prompt), `ordering`; `page_size` up to 200. "
        "v1 pages are numbered, v2 lists use cursors.",
    ),
    retrieve=extend_schema(summary="An image with its quality report, history and product"),
    create=extend_schema(
        summary="Upload an image made elsewhere",
        request={"multipart/form-data": s.ImageUploadSerializer},
        responses={201: s.ImageSerializer},
    ),
    destroy=extend_schema(
        summary="Delete an image (pending or rejected; `force` also approved or failed)",
        parameters=[OpenApiParameter("force", bool, description="Also delete approved or failed images.")],
        responses={204: None},
    ),
    file=extend_schema(summary="The print file's bytes", responses=IMAGE_BYTES),
    thumbnail=extend_schema(
        summary="The review thumbnail (JPEG, ≤ 512 px)", responses={(200, "image/jpeg"): OpenApiTypes.BINARY}
    ),
    approve=extend_schema(summary="Approve", request=s.ApproveInputSerializer, responses=REVIEW_RESPONSES),
    reject=extend_schema(summary="Reject (the file is kept)", request=s.RejectInputSerializer,
                         responses=REVIEW_RESPONSES),
    reset=extend_schema(summary="Back to pending", request=None, responses=REVIEW_RESPONSES),
)
@extend_schema(tags=["images"])
class ImageViewSet(
    ActionPolicyMixin,
    ReadsBeforeRateLimitMixin,
    VersionedPaginationMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ImageSerializer
    filter_backends = [OrderingFilter]
    ordering_fields = s.IMAGE_ORDERING
    ordering = ["-created_at", "-id"]
    # A page's reads are sent before the rate limiter's answer is read (Redis and PostgreSQL at once).
    rate_limit_read_later = frozenset({"list"})
    action_permissions = {
        "list": VIEW_IMAGE,
        "retrieve": VIEW_IMAGE,
        "file": VIEW_IMAGE,
        "thumbnail": VIEW_IMAGE,
        "create": ["images.add_image"],
        "approve": REVIEW_IMAGE,
        "reject": REVIEW_IMAGE,
        "reset": REVIEW_IMAGE,
        "destroy": DELETE_IMAGE,
    }
    # Uploading makes images like generating does; deleting is a review decision.
    action_rate_tiers = {"create": "generation", "destroy": "approval"}

    def get_queryset(self) -> QuerySet[Image]:
        if self.action != "list":
            return Image.objects.prefetch_related("history")
        # The list reads plain rows and their history itself (see `list`).
        if self._unfiltered():
            return selectors.images_all()  # nothing to validate or filter by (no filter declares a default)
        params = s.ImageFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        filters = params.validated_data
        return selectors.images_filter(
            status=filters.get("status"), generation_id=filters.get("generation"), search=filters.get("search")
        )

    def list(self, request: Request, *args, **kwargs) -> Response:
        # ImageSerializer's body from plain rows: the same queries as select_related + prefetch (count,
        # page, history) plus the page's products, without building and walking instances row by row.
        context, renderer = self._renderer()
        if self._unfiltered():
            queryset = _all_images_values(renderer.columns).all()
        else:
            queryset = self.get_queryset().values(*renderer.columns)
        self._page_reads = (context, renderer, None)
        rows = self.paginate_queryset(self.filter_queryset(queryset))
        rate_limit_settle(request._request)  # Redis answered while the page was made and read
        return self.get_paginated_response(self._render_rows(context, renderer, rows, self._page_reads[2]))

    def send_with_page(self, keys: KeysFrom | None) -> None:
        """Called by the paginator (api.pagination) where it sends the page: on PostgreSQL the page's
        products and history are sent with it, by its ids as its statement selects them, in its round trip
        and snapshot. None: nothing sent with the page, or the rows are read otherwise (they are then read
        for the rows rendered, as on any other database)."""
        context, renderer, _ = self._page_reads
        products = None
        if keys is not None:
            products = relations.product_summaries_later(keys)
            renderer.send_from(keys)
        else:
            renderer.unsend()
        self._page_reads = (context, renderer, products)

    def _unfiltered(self) -> bool:
        return not any(name in self.request.query_params for name in s.ImageFilterSerializer._declared_fields)

    def _renderer(self) -> tuple[dict, s.RowRenderer]:
        context = self.get_serializer_context()
        return context, s.RowRenderer(self.get_serializer(context=context))

    @staticmethod
    def _render_rows(context: dict, renderer: s.RowRenderer, rows: list[dict],
                     products: Callable[[], dict] | None = None) -> list[dict]:
        """ImageSerializer's body for `.values()` rows of the renderer's columns, with their products
        (`products` when they were sent with the page, see `send_with_page`)."""
        if products is None:
            # On PostgreSQL the products and the history are sent together and answered when the pipeline
            # ends, read after it: one round trip for both.
            with pipelined(router.db_for_read(Image)):
                products = relations.product_summaries_later([row["id"] for row in rows])
                renderer.send(rows)
        context["products"] = products()
        return renderer.render(rows)

    def get_parsers(self):
        # Only the upload takes multipart (anything else there is a 415). DRF asks for the parsers
        # before it sets `self.action`, hence the look-up in the action map.
        request = getattr(self, "request", None)
        method = request.method.lower() if request is not None and request.method else ""
        if (getattr(self, "action", None) or self.action_map.get(method)) == "create":
            return [MultiPartParser()]
        return super().get_parsers()

    def get_renderers(self):
        if getattr(self, "action", None) in ("file", "thumbnail"):
            return [FastJSONRenderer(), BinaryRenderer()]
        return super().get_renderers()

    def _image_response(self, image_id: str, status_code: int = 200, headers: dict | None = None) -> Response:
        with pipelined(router.db_for_read(Image)):
            answer = self._image_answer(image_id)
        return answer(status_code, headers)

    def _image_answer(self, image_id: str) -> Callable[..., Response]:
        """The image as it now is, rendered like a list row (RowRenderer: the serializer's own fields from a
        `.values()` row; building the serializer's fields for one instance cost more than the decision).
        Its three reads (the row, its products, its history) are sent now and read by the function returned,
        `(status_code=200, headers=None) -> Response`: called after a `pipelined()` block that sent them
        has ended, they took that block's last round trip on PostgreSQL."""
        context, renderer = self._renderer()
        row = values_in_later(Image, key="id", keys=[image_id], fields=renderer.columns)
        products = relations.product_summaries_later([image_id])
        renderer.send([{"id": image_id}])

        def answer(status_code: int = 200, headers: dict | None = None) -> Response:
            rows = row()
            if not rows:
                raise NotFound()  # deleted meanwhile (a concurrent batch/delete or prune)
            context["products"] = products()
            return Response(renderer.render(rows)[0], status=status_code, headers=headers)

        return answer

    def _decided(self, decide: Callable[[], object], image_id: str) -> Response:
        """The decision and the image as it then is: on PostgreSQL in one transaction and pipeline, the
        answer's reads sent with the decision's last statements and answered by the pipeline's end."""
        with pipelined_transaction(router.db_for_write(Image)):
            decide()
            answer = self._image_answer(image_id)
        return answer()

    def create(self, request: Request, *args, **kwargs) -> Response:
        data = s.ImageUploadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            image = image_intake(
                source=upload,
                filename=upload.name or "upload",
                source_kind=ImageSource.UPLOADED,
                prompt=data.validated_data["prompt"],
                actor=api_actor(request),
                refuse_duplicate=True,
            )
        except BusyError as exc:
            raise ServiceUnavailable(exc) from None
        location = reverse("image-detail", kwargs={"pk": image.id}, request=request)
        return self._image_response(image.id, status.HTTP_201_CREATED, {"Location": location})

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        params = s.DeleteInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        services.image_delete(image_id=kwargs["pk"], actor=api_actor(request), force=params.validated_data["force"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _bytes(self, field_name: str) -> FileResponse:
        image = self.get_object()
        field = getattr(image, field_name)
        if not field:
            raise NotFound(f"Image {image.id} has no {field_name}.")
        try:
            handle = field.open("rb")
        except FileNotFoundError:
            raise NotFound(f"The {field_name} of image {image.id} is missing from storage.") from None
        content_type = mimetypes.guess_type(field.name)[0] or "application/octet-stream"
        return FileResponse(handle, content_type=content_type)

    @action(detail=True, methods=["get"])
    def file(self, request: Request, *args, **kwargs) -> FileResponse:
        return self._bytes("file")

    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, *args, **kwargs) -> FileResponse:
        return self._bytes("thumbnail")

    @action(detail=True, methods=["post"], rate_tier="approval")
    def approve(self, request: Request, *args, **kwargs) -> Response:
        data = s.ApproveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decide = functools.partial(services.image_approve, image_id=kwargs["pk"], actor=api_actor(request),
                                   note=data.validated_data["note"])
        return self._decided(decide, kwargs["pk"])

    @action(detail=True, methods=["post"], rate_tier="approval")
    def reject(self, request: Request, *args, **kwargs) -> Response:
        data = s.RejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decide = functools.partial(services.image_reject, image_id=kwargs["pk"], actor=api_actor(request),
                                   reason=data.validated_data["reason"])
        return self._decided(decide, kwargs["pk"])

    @action(detail=True, methods=["post"], rate_tier="approval")
    def reset(self, request: Request, *args, **kwargs) -> Response:
        decide = functools.partial(services.image_reset, image_id=kwargs["pk"], actor=api_actor(request))
        return self._decided(decide, kwargs["pk"])


# --- Batches -----------------------------------------------------------------------------------

BATCH_RESPONSES = {
    200: s.BatchResultSerializer,
    409: OpenApiResponse(description="`atomic` and not every image could change: nothing changed; "
                         "`details` holds the would-be result."),
}


@extend_schema(tags=["batch"], responses=BATCH_RESPONSES)
class BatchViewSet(ActionPolicyMixin, viewsets.ViewSet):
    """Set-wise review actions with a per-id result; `atomic` makes them all or nothing."""

    action_permissions = {"approve": REVIEW_IMAGE, "reject": REVIEW_IMAGE, "delete_images": DELETE_IMAGE}

    def _run(self, request: Request, serializer_class, service, **mapping) -> Response:
        data = serializer_class(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        extra = {name: values[field] for name, field in mapping.items()}
        result = service(image_ids=values["image_ids"], actor=api_actor(request), atomic=values["atomic"], **extra)
        return Response(result.as_dict())

    @extend_schema(summary="Approve many", request=s.BatchApproveInputSerializer)
    @action(detail=False, methods=["post"], rate_tier="approval")
    def approve(self, request: Request, *args, **kwargs) -> Response:
        return self._run(request, s.BatchApproveInputSerializer, services.images_approve, note="note")

    @extend_schema(summary="Reject many", request=s.BatchRejectInputSerializer)
    @action(detail=False, methods=["post"], rate_tier="approval")
    def reject(self, request: Request, *args, **kwargs) -> Response:
        return self._run(request, s.BatchRejectInputSerializer, services.images_reject, reason="reason")

    # Not named `delete`: a ViewSet method of that name would also answer HTTP DELETE.
    @extend_schema(summary="Delete many", request=s.BatchDeleteInputSerializer)
    @action(detail=False, methods=["post"], url_path="delete", url_name="delete", rate_tier="approval")
    def delete_images(self, request: Request, *args, **kwargs) -> Response:
        data = s.BatchDeleteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = services.images_delete(
            image_ids=values["image_ids"], actor=api_actor(request), force=values["force"], atomic=values["atomic"],
            batch_action="delete",
        )
        return Response(result.as_dict())


# --- Stats -------------------------------------------------------------------------------------

class StatsView(APIView):
    """`GET stats`: how many images, generations and products are in each status."""

    permission_classes = [ActionPermission]
    action_permissions = {"get": VIEW_IMAGE}

    @extend_schema(operation_id="stats", tags=["stats"], responses=s.StatsSerializer, summary="Counts by status")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return Response(selectors.stats())
