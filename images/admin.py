"""The reviewers' home: the image review queue, image and generation pages, and the admin's own views.

Every state change here calls the same service as the API (images.services, images.generation) with
`Actor(request.user, "admin")`; the admin never writes a status itself. The publishing app adds its
publish action and product link to this page (publishing/admin.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from api.throttling import RateLimitExceeded, rate_limit_hit, user_ident
from core.admin_tools import (
    REVIEW_CSS,
    CappedCountAdmin,
    ReadOnlyInline,
    StatusHistoryInline,
    admin_actor,
    admin_url,
    report_result,
    status_badge,
)
from core.batch import Outcome
from core.errors import DomainError, DuplicatePromptError, InvalidInputError
from images.forms import ApproveForm, GenerationStartForm, RejectForm
from images.generation import generation_cancel, generation_create, generations_of, sees_every_generation
from images.models import (
    Generation,
    GenerationStatus,
    GenerationTransition,
    Image,
    ImageStatus,
    ImageTransition,
    QuickRejectReason,
)
from images.selectors import (
    generation_status_counts,
    generations_of_images,
    generations_search,
    image_next_pending_id,
    image_status_counts,
    images_filter,
    images_search,
    with_duplicate_prompt_marker,
)
from images.services import (
    DELETABLE,
    can_transition,
    image_approve,
    image_reject,
    images_approve,
    images_delete,
    images_reject,
    images_reset,
)

admin.site.site_header = "POD Gateway"
admin.site.site_title = "POD Gateway admin"
admin.site.index_title = "Review and publishing"
# The navigation sidebar takes 300px of every page; without it the queue's columns fit a 1366px laptop
# screen beside the filters. The index page and the breadcrumbs still lead everywhere.
admin.site.enable_nav_sidebar = False

def image_change_url(image_id: str) -> str:
    return admin_url("images_image_change", image_id)


def thumbnail_html(image: Image, css_class: str = "pod-thumb") -> str:
    """An <img> of the intake thumbnail (never the full print file), or a placeholder."""
    if not image.thumbnail:
        return format_html('<span class="{} pod-thumb-missing">no preview</span>', css_class)
    src = admin_url("images_image_thumbnail", image.pk)
    return format_html('<img class="{}" src="{}" alt="" loading="lazy">', css_class, src)


def admin_wording(entry: dict[str, str]) -> str:
    """The admin's sentence for a refused image: the admin never forces a delete, a reset comes first."""
    if entry["code"] == Outcome.NEEDS_FORCE:
        return "only pending and rejected images are deleted here: reset it to pending first"
    return ""


class GenerationFilter(admin.SimpleListFilter):
    """The latest generations as choices; any generation id works through `?generation=`."""

    title = "generation"
    parameter_name = "generation"
    # The generations of the newest images (images.selectors.generations_of_images): the same cost at any size.
    latest = 15

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        latest = generations_of_images(Image.objects.order_by("-created_at", "-id"), limit=self.latest)
        choices = [(g["id"], f"{g['prompt'][:40]} ({g['created_at']:%b %d %H:%M})") for g in latest]
        chosen = self.value()
        if chosen and chosen not in {pk for pk, _ in choices}:
            # An older generation reached through its page's link stays named as the current choice.
            choices.append((chosen, chosen))
        return choices

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return images_filter(queryset, generation_id=self.value())


class BackendFilter(admin.SimpleListFilter):
    """The configured generation backends as choices (Django's own filter of a field without choices reads
    every row's value, DISTINCT, on each page); another name still filters through `?backend=`."""

    title = "backend"
    parameter_name = "backend"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        names = list(settings.GENERATION_BACKENDS)
        if self.value() and self.value() not in names:  # a backend no longer configured stays named
            names.append(self.value())
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(backend=self.value()) if self.value() else queryset


class QualityFilter(admin.SimpleListFilter):
    title = "quality"
    parameter_name = "quality"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("valid", "Print-ready"), ("warnings", "With warnings"), ("errors", "With errors")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        conditions = {
            "valid": Q(quality_valid=True, quality_warnings=0),
            "warnings": Q(quality_valid=True, quality_warnings__gt=0),
            "errors": Q(quality_valid=False),
        }
        return queryset.filter(conditions[self.value()]) if self.value() in conditions else queryset


class ImageTransitionInline(ReadOnlyInline):
    """The decision history: read-only, as the model itself is append-only."""

    model = ImageTransition
    verbose_name = "decision"
    verbose_name_plural = "Decision history"
    fields = readonly_fields = ["when", "from_status", "to_status", "by", "via", "note"]

    @admin.display(description="When")
    def when(self, obj: ImageTransition) -> str:
        return date_format(localtime(obj.created_at), "Y-m-d H:i:s")

    @admin.display(description="By")
    def by(self, obj: ImageTransition) -> str:
        return obj.actor_label

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Whoever may see an image may see how it was decided; there is no separate history permission.
        return request.user.has_perm("images.view_image") or request.user.has_perm("images.change_image")


# --- The queue's changelist at any size ----------------------------------------------------------
#
# Every order the queue offers is one an index reads in order (see Image.Meta.indexes), the page count
# comes from the database's counters or a bounded count, and pages stop at CappedPaginator.max_pages:
# so no page, filter, search or order reads the whole table.

# The admin sort field → the full, index-served order (descending reverses every part).
QUEUE_ORDERS: dict[str, list[str]] = {
    "status": ["status", "-created_at", "-id"],
    "quality_valid": ["quality_valid", "-created_at", "-id"],
    "created_at": ["created_at", "id"],
}
PENDING_FIRST = ["review_rank", "-created_at", "-id"]
NEWEST_FIRST = ["-created_at", "-id"]
STATUS_PARAM = "status__exact"


def _reversed(order: list[str]) -> list[str]:
    return [part[1:] if part.startswith("-") else f"-{part}" for part in order]


class QueueChangeList(ChangeList):
    """The review queue's list: one index-served order per sort column, pending first by default."""

    def get_ordering(self, request: HttpRequest, queryset: QuerySet) -> list[str]:
        # Only the first sort column counts: a second one would need a sort of every matching row.
        first = (self.params.get(ORDER_VAR) or "").split(".")[0]
        _, descending, index = first.rpartition("-")
        try:
            field = self.get_ordering_field(self.list_display[int(index)])
        except (IndexError, ValueError):
            field = None
        if field in QUEUE_ORDERS:
            return _reversed(QUEUE_ORDERS[field]) if descending else list(QUEUE_ORDERS[field])
        # Within one status every row has the same rank: the status index orders it newest first.
        return NEWEST_FIRST if self.params.get(STATUS_PARAM) else PENDING_FIRST

    def get_ordering_field_columns(self) -> dict[int, str]:
        columns = super().get_ordering_field_columns()
        if ORDER_VAR not in self.params:
            return {}
        return dict(list(columns.items())[:1])

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # The page's rows only: as an annotation of the list's queryset the "duplicate prompt" subquery's
        # join to the generations went into every count of the list as well.
        self.result_list = list(self.result_list)
        marked = Image.objects.filter(pk__in=[image.pk for image in self.result_list])
        duplicated = set(with_duplicate_prompt_marker(marked).filter(duplicate=True).values_list("pk", flat=True))
        for image in self.result_list:
            image.duplicate_prompt = image.pk in duplicated


@admin.register(Image)
class ImageAdmin(CappedCountAdmin, admin.ModelAdmin):
    """The review queue: pending images first, decided in bulk through the lifecycle services."""

    list_display = [
        "thumbnail_column", "status_column", "prompt_column", "generation_column",
        "size_column", "quality_column", "created_column",
    ]
    list_display_links = ["thumbnail_column", "prompt_column"]
    list_filter = ["status", QualityFilter, GenerationFilter, "created_at"]
    list_select_related = ["generation"]
    search_fields = ["prompt", "=id"]
    list_per_page = 50
    list_max_show_all = 500
    # Facet counts would count every filter's every choice over the table.
    show_facets = admin.ShowFacets.NEVER
    actions = ["approve_images", "reject_images", "reset_images", "delete_images"]
    inlines = [ImageTransitionInline]
    change_form_template = "admin/images/image/change_form.html"
    fieldsets = [
        (None, {"fields": ["preview", "status_column", "prompt", "generation_column"]}),
        ("Print file", {"fields": ["id", "source", "size_column", "format", "color_mode", "file_size_column",
                                   "sha256", "created_by", "created_at", "updated_at"]}),
        ("Quality report", {"fields": ["quality_report"]}),
    ]
    readonly_fields = [
        "preview", "status_column", "prompt", "generation_column", "id", "source", "size_column",
        "format", "color_mode", "file_size_column", "sha256", "created_by", "created_at", "updated_at",
        "quality_report",
    ]

    class Media:
        css = REVIEW_CSS

    # --- Queue --------------------------------------------------------------------------------

    def get_ordering(self, request: HttpRequest) -> list:
        return PENDING_FIRST

    def get_changelist(self, request: HttpRequest, **kwargs) -> type[ChangeList]:
        return QueueChangeList

    def status_counts(self, request: HttpRequest) -> dict[str, int]:
        return image_status_counts()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Each word (or "quoted phrase") in the prompt, through the prompt index, or the exact image id."""
        return images_search(queryset, search_term), False

    @admin.display(description="Preview")
    def thumbnail_column(self, obj: Image) -> str:
        return thumbnail_html(obj)

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj: Image) -> str:
        return status_badge(obj.status)

    @admin.display(description="Prompt")
    def prompt_column(self, obj: Image) -> str:
        prompt = obj.prompt if len(obj.prompt) <= 140 else obj.prompt[:139] + "…"
        duplicate = ""
        if getattr(obj, "duplicate_prompt", False):
            url = reverse("admin:images_generation_changelist") + "?" + urlencode(
                {"prompt_hash": obj.generation.prompt_hash}
            )
            duplicate = format_html(
                ' <a class="pod-badge pod-duplicate" href="{}" title="Another generation used the same prompt '
                'and parameters">duplicate prompt</a>',
                url,
            )
        return format_html('<span class="pod-prompt">{}</span>{}', prompt or "(no prompt)", duplicate)

    @admin.display(description="Generation")
    def generation_column(self, obj: Image) -> str:
        if obj.generation is None:
            return obj.get_source_display()
        # The long id goes into the tooltip: the batch's time and the slot in it are what a reviewer reads.
        url = admin_url("images_generation_change", obj.generation_id)
        slot = f"#{obj.batch_index + 1}" if obj.batch_index is not None else ""
        started = date_format(localtime(obj.generation.created_at), "M j, H:i")
        return format_html('<a class="pod-generation" href="{}" title="{}">{}</a> {}', url, obj.generation_id,
                           started, slot)

    @admin.display(description="Size / DPI")
    def size_column(self, obj: Image) -> str:
        return format_html(
            '<span class="pod-size">{}×{}</span> <span class="pod-dpi">{}</span>',
            obj.width, obj.height, f"{obj.dpi} dpi" if obj.dpi else "no dpi",
        )

    @admin.display(description="Quality", ordering="quality_valid")
    def quality_column(self, obj: Image) -> str:
        errors = obj.quality.get("errors") or []
        warnings = obj.quality.get("warnings") or []
        tips = "\n".join([*errors, *warnings])
        if not obj.quality_valid:
            count = len(errors) or 1
            return format_html('<span class="pod-badge pod-q-error" title="{}">{} error{}</span>',
                               tips, count, "s" if count != 1 else "")
        if obj.quality_warnings:
            count = obj.quality_warnings
            return format_html('<span class="pod-badge pod-q-warning" title="{}">{} warning{}</span>',
                               tips, count, "s" if count != 1 else "")
        return format_html('<span class="pod-badge pod-q-ok">{}</span>', "print-ready")

    @admin.display(description="Created", ordering="created_at")
    def created_column(self, obj: Image) -> str:
        return format_html('<span class="pod-created">{}</span>', date_format(localtime(obj.created_at), "M j, H:i"))

    # --- Change page (read-only; decisions go through the buttons) -----------------------------

    @admin.display(description="Preview")
    def preview(self, obj: Image) -> str:
        file_url = admin_url("images_image_file", obj.pk)
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a><br><a href="{}" target="_blank" rel="noopener">'
            "Open the full-resolution print file ({}×{})</a>",
            file_url, thumbnail_html(obj, "pod-preview"), file_url, obj.width, obj.height,
        )

    @admin.display(description="File size")
    def file_size_column(self, obj: Image) -> str:
        return filesizeformat(obj.file_size) if obj.file_size else "—"

    @admin.display(description="Report")
    def quality_report(self, obj: Image) -> str:
        report = obj.quality or {}
        errors = format_html_join("", '<li class="pod-q-error-item">{}</li>', ((e,) for e in report.get("errors", [])))
        warnings = format_html_join(
            "", '<li class="pod-q-warning-item">{}</li>', ((w,) for w in report.get("warnings", []))
        )
        info_rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", _flatten(report.get("info") or {})
        )
        verdict = "valid for print" if report.get("valid", obj.quality_valid) else "not valid for print"
        return format_html(
            '<div class="pod-quality"><p>{} {}</p><ul>{}{}</ul><table class="pod-info">{}</table></div>',
            self.quality_column(obj), verdict, errors, warnings, info_rows,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Images arrive through generation, upload or import, never through an admin form.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        # Nobody edits an image directly: the change page is a read-only view with decision buttons.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Image | None = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or obj.status in DELETABLE)

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("images.review_image")

    def delete_model(self, request: HttpRequest, obj: Image) -> None:
        result = images_delete(image_ids=[obj.pk], actor=admin_actor(request))
        if not result.successful:
            entry = result.skipped[0] if result.skipped else None
            raise PermissionDenied((admin_wording(entry) or entry["reason"]) if entry else "not deletable")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        images_delete(image_ids=list(queryset.values_list("pk", flat=True)), actor=admin_actor(request))

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        return super().changelist_view(request, {"title": "Review queue", **(extra_context or {})})

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        image = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if image is not None and self.has_review_permission(request):
            extra["can_approve"] = can_transition(image.status, ImageStatus.APPROVED)
            extra["can_reject"] = can_transition(image.status, ImageStatus.REJECTED)
            extra["reject_form"] = RejectForm()
        return super().change_view(request, object_id, form_url, extra)

    # --- Bulk actions ---------------------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        # Django's own bulk delete bypasses the lifecycle; `delete_images` replaces it.
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description="Approve selected images", permissions=["review"])
    def approve_images(self, request: HttpRequest, queryset: QuerySet) -> None:
        result = images_approve(image_ids=_ids(queryset), actor=admin_actor(request))
        report_result(self, request, result, "Approved")

    @admin.action(description="Reject selected images…", permissions=["review"])
    def reject_images(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = _ids(queryset)
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            result = images_reject(image_ids=ids, actor=admin_actor(request), reason=form.cleaned_data["reason"])
            report_result(self, request, result, "Rejected")
            return None
        return self.intermediate_page(request, queryset, form, action="reject_images", title="Reject images",
                                  submit="Reject", intro="Reject these images? The reason is kept in each "
                                  "image's decision history. Files are kept until pruned.")

    @admin.action(description="Reset selected images to pending", permissions=["review"])
    def reset_images(self, request: HttpRequest, queryset: QuerySet) -> None:
        result = images_reset(image_ids=_ids(queryset), actor=admin_actor(request))
        report_result(self, request, result, "Reset to pending")

    @admin.action(description="Delete selected images…", permissions=["delete"])
    def delete_images(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        if "apply" in request.POST:
            result = images_delete(image_ids=_ids(queryset), actor=admin_actor(request), batch_action="delete")
            report_result(self, request, result, "Deleted", wording=admin_wording)
            return None
        return self.intermediate_page(request, queryset, None, action="delete_images", title="Delete images",
                                  submit="Delete", intro="Delete these images and their files? Only pending and "
                                  "rejected images are deleted; the others are listed as not changed.")

    def intermediate_page(self, request: HttpRequest, queryset: QuerySet, form: Any, *, action: str, title: str,
                      submit: str, intro: str) -> TemplateResponse:
        """The page between choosing an action and applying it: the images, the question, a form."""
        images = list(queryset.select_related(None).only("id", "status", "prompt", "thumbnail")[:500])
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "intro": intro,
            "submit_label": submit,
            "form": form,
            "action": action,
            "images": [(image, thumbnail_html(image, "pod-thumb-small")) for image in images],
            "opts": self.model._meta,
            "media": self.media + form.media if form is not None else self.media,
        }
        return TemplateResponse(request, "admin/images/image/action_form.html", context)

    # --- Admin views: files for staff, decisions from the change page -------------------------

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/thumbnail/", wrap(self.thumbnail_view), name="images_image_thumbnail"),
            path("<path:object_id>/file/", wrap(self.file_view), name="images_image_file"),
            path("<path:object_id>/approve/", wrap(require_POST(self.approve_view)), name="images_image_approve"),
            path("<path:object_id>/reject/", wrap(require_POST(self.reject_view)), name="images_image_reject"),
            *super().get_urls(),
        ]

    def _viewable(self, request: HttpRequest, object_id: str) -> Image:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Image, pk=unquote(object_id))

    def thumbnail_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        """The small intake JPEG; media is not served publicly, so staff get it through the admin."""
        image = self._viewable(request, object_id)
        if not image.thumbnail:
            raise Http404("This image has no thumbnail")
        return _file_response(image.thumbnail, content_type="image/jpeg")

    def file_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        image = self._viewable(request, object_id)
        content_type = {"PNG": "image/png", "JPEG": "image/jpeg"}.get(image.format.upper(), "application/octet-stream")
        return _file_response(image.file, content_type=content_type)

    def approve_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        object_id = unquote(object_id)
        form = ApproveForm(request.POST)
        return self._decide(request, object_id, form, lambda actor: image_approve(
            image_id=object_id, actor=actor, note=form.cleaned_data["note"]), "Approved")

    def reject_view(self, request: HttpRequest, object_id: str) -> HttpResponseRedirect:
        object_id = unquote(object_id)
        form = RejectForm(request.POST)
        return self._decide(request, object_id, form, lambda actor: image_reject(
            image_id=object_id, actor=actor, reason=form.cleaned_data["reason"]), "Rejected")

    def _decide(
        self, request: HttpRequest, object_id: str, form: Any, decide: Any, done: str
    ) -> HttpResponseRedirect:
        """Apply one decision, then go on to the next pending image (or back to the queue)."""
        if not self.has_review_permission(request):
            raise PermissionDenied
        if not form.is_valid():
            # A bad note or reason is refused, not dropped: the decision history must say what was given.
            problems = "; ".join(str(m) for field_messages in form.errors.values() for m in field_messages)
            self.message_user(request, f"Not changed: {problems}", messages.ERROR)
            return HttpResponseRedirect(image_change_url(object_id))
        try:
            decide(admin_actor(request))
        except DomainError as exc:
            self.message_user(request, f"Not changed: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(image_change_url(object_id))
        self.message_user(request, f"{done} {object_id}.", messages.SUCCESS)
        following = image_next_pending_id(after=object_id)
        if following:
            return HttpResponseRedirect(image_change_url(following))
        return HttpResponseRedirect(reverse("admin:images_image_changelist"))


def _ids(queryset: QuerySet) -> list[str]:
    return list(queryset.values_list("pk", flat=True))


def _file_response(field_file: Any, *, content_type: str) -> FileResponse:
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage") from None
    response = FileResponse(handle, content_type=content_type)
    # Files never change under an image id; let the reviewer's browser keep them (privately).
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _flatten(info: dict, prefix: str = "") -> Iterable[tuple[str, str]]:
    for key, value in info.items():
        label = f"{prefix}{key.replace('_', ' ')}"
        if isinstance(value, dict):
            yield from _flatten(value, f"{label} · ")
        else:
            yield label, str(value)


class GenerationTransitionInline(StatusHistoryInline):
    model = GenerationTransition


@admin.register(Generation)
class GenerationAdmin(CappedCountAdmin, admin.ModelAdmin):
    """Generations: start one (validated like `POST generate`), follow it, review its images."""

    list_display = ["id", "status_column", "prompt", "backend", "success_count", "failed_count", "created_by",
                    "created_at"]
    list_filter = ["status", BackendFilter, "created_at"]
    list_select_related = ["created_by"]
    search_fields = ["prompt", "=id", "=prompt_hash"]
    list_per_page = 50
    actions = ["cancel_generations"]
    inlines = [GenerationTransitionInline]
    fields = readonly_fields = [
        "id", "status_column", "prompt", "negative_prompt", "style", "genre", "backend", "params", "prompt_hash",
        "success_count", "failed_count", "error", "external_jobs", "request_id", "created_by", "created_at",
        "started_at", "finished_at", "images_grid",
    ]

    class Media:
        css = REVIEW_CSS

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # As in the API: a client's own generations only; reviewers and above see every one.
        return super().get_queryset(request) & generations_of(admin_actor(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Each word (or "quoted phrase") in the prompt, through the prompt index, or the exact id or hash."""
        return generations_search(queryset, search_term), False

    def status_counts(self, request: HttpRequest) -> dict[str, int] | None:
        # The counters count every generation: a client's list of their own is counted as it is.
        return generation_status_counts() if sees_every_generation(admin_actor(request)) else None

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj: Generation) -> str:
        return status_badge(obj.status)

    @admin.display(description="Images")
    def images_grid(self, obj: Generation) -> str:
        images = list(obj.images.order_by("batch_index", "created_at"))
        if not images:
            return "No images yet." if obj.status in (GenerationStatus.QUEUED, GenerationStatus.RUNNING) else "None."
        review_url = reverse("admin:images_image_changelist") + "?" + urlencode({"generation": obj.pk})
        tiles = format_html_join(
            "",
            '<a class="pod-tile" href="{}">{}<span>{}</span></a>',
            ((image_change_url(image.pk), thumbnail_html(image), status_badge(image.status)) for image in images),
        )
        return format_html('<p><a class="button" href="{}">Review these {} images in the queue</a></p>'
                           '<div class="pod-grid">{}</div>', review_url, len(images), tiles)

    def has_change_permission(self, request: HttpRequest, obj: Generation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Generation | None = None) -> bool:
        # Generations are the record of what was asked for and paid; they are not deleted.
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("images.review_image")

    @admin.action(description="Cancel selected generations", permissions=["review"])
    def cancel_generations(self, request: HttpRequest, queryset: QuerySet) -> None:
        for generation_id in _ids(queryset):
            try:
                generation_cancel(generation_id=generation_id, actor=admin_actor(request))
            except DomainError as exc:
                self.message_user(request, f"{generation_id} not cancelled: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Cancelled {generation_id}.", messages.SUCCESS)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        """Start a generation: the API's serializer validates, `generation_create` queues the work."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = GenerationStartForm(request.POST if request.method == "POST" else None)
        limited = None
        if request.method == "POST":
            # The API's generation tier, in the same window as this user's `POST generate` requests.
            limited = rate_limit_hit(tier="generation", ident=user_ident(request.user))
            if not limited.allowed:
                form.add_error(None, str(RateLimitExceeded(limited).detail))
        if (limited is None or limited.allowed) and form.is_valid():
            try:
                generation = generation_create(data=form.validated_data, actor=admin_actor(request))
            except DuplicatePromptError as exc:
                existing = exc.details.get("existing_generation_id", "")
                form.add_error(None, format_html(
                    'The same prompt and parameters were generated before (<a href="{}">{}</a>). Tick “Allow '
                    'duplicate” to generate again.', admin_url("images_generation_change", existing),
                    existing,
                ) if existing else exc.message)
            except InvalidInputError as exc:
                for name, field_messages in exc.fields.items():
                    for message in field_messages:
                        form.add_error(name if name in form.fields else None, message)
                if not exc.fields:
                    form.add_error(None, exc.message)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, f"Started {generation.pk}; its images appear here as they are made.",
                                  messages.SUCCESS)
                return HttpResponseRedirect(admin_url("images_generation_change", generation.pk))
        context = {
            **self.admin_site.each_context(request),
            "title": "Start a generation",
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            **(extra_context or {}),
        }
        if limited is not None and not limited.allowed:
            return TemplateResponse(request, "admin/images/generation/start.html", context, status=429,
                                    headers=limited.headers())
        return TemplateResponse(request, "admin/images/generation/start.html", context)


@admin.register(QuickRejectReason)
class QuickRejectReasonAdmin(admin.ModelAdmin):
    """The reasons the review workspace offers by number (`r` then 1–9), in their order."""

    list_display = ["text", "position"]
    list_editable = ["position"]
    ordering = ["position", "id"]
    search_fields = ["text"]
