"""The review workspace at /admin/review/: big tiles of the pending queue, decided by keyboard without a reload.

The page is one admin view; the tiles after the first page and every decision travel as JSON (session +
CSRF, like every admin form). Decisions call the lifecycle services with `Actor(user, "admin")`, under the
API's `approval` rate-limit tier, so the workspace is one more door onto the same rules. The publishing
app adds its publish decision by extending `ReviewWorkspace` (publishing/review.py); this module knows
nothing of publishing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.timezone import localtime
from django.views.decorators.http import require_GET, require_POST

from api.parsers import MalformedBody, json_body_load
from api.throttling import rate_limit_hit, user_ident
from core.actors import Actor
from core.admin_tools import admin_actor
from core.batch import BatchResult
from core.errors import DomainError
from images.forms import RejectForm
from images.models import Generation, Image, ImageStatus, ImageTransition, QuickRejectReason
from images.selectors import (
    generations_of_images,
    image_pending_count,
    images_pending,
    with_duplicate_prompt_marker,
)
from images.services import (
    image_approve,
    image_reject,
    image_reset,
    images_approve,
    images_reject,
    images_transition,
)

PAGE_SIZE = 48
MAX_IDS = 500
# Digits 1–9 pick a quick reason, so only the first nine are offered by key.
MAX_QUICK_REASONS = 9
UNDO_NOTE = "undo in the review workspace"
QUALITY_FILTERS = {
    "valid": Q(quality_valid=True, quality_warnings=0),
    "warnings": Q(quality_valid=True, quality_warnings__gt=0),
    "errors": Q(quality_valid=False),
}
CREATED_FILTERS = {"today": None, "7d": timedelta(days=7), "30d": timedelta(days=30)}
TILE_FIELDS = [
    "id", "status", "prompt", "width", "height", "dpi", "quality", "quality_valid", "quality_warnings",
    "thumbnail", "generation_id", "batch_index", "created_at",
]


@dataclass(frozen=True)
class ReviewAction:
    """One decision of the workspace: its key, its button, who may take it and the services that apply it.

    `one` decides a single image (raising the service's `DomainError` when refused); `many` decides a
    selection set-wise and reports per image. Both receive the ids, the actor and the reason typed or picked.
    """

    name: str
    key: str
    label: str
    permission: str
    tier: str
    status: str
    one: Callable[[str, Actor, str], Any]
    many: Callable[[list[str], Actor, str], BatchResult]


class RequestError(Exception):
    """A request the workspace cannot act on: answered with a coded JSON error, nothing changed."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def _error_response(exc: RequestError, headers: dict[str, str] | None = None) -> JsonResponse:
    body = {"error": exc.message, "code": exc.code, "details": exc.details}
    return JsonResponse(body, status=exc.status, headers=headers)


def _undo_many(image_ids: list[str], actor: Actor, reason: str) -> BatchResult:
    return images_transition(image_ids=image_ids, to_status=ImageStatus.PENDING, actor=actor, note=UNDO_NOTE,
                             batch_action="reset")


REVIEW_ACTIONS = [
    ReviewAction(
        name="approve", key="a", label="Approve", permission="images.review_image", tier="approval",
        status=ImageStatus.APPROVED,
        one=lambda image_id, actor, reason: image_approve(image_id=image_id, actor=actor),
        many=lambda ids, actor, reason: images_approve(image_ids=ids, actor=actor),
    ),
    ReviewAction(
        name="reject", key="r", label="Reject…", permission="images.review_image", tier="approval",
        status=ImageStatus.REJECTED,
        one=lambda image_id, actor, reason: image_reject(image_id=image_id, actor=actor, reason=reason),
        many=lambda ids, actor, reason: images_reject(image_ids=ids, actor=actor, reason=reason),
    ),
    # Undo puts the image back in the queue through the reset service; its history says it was an undo.
    ReviewAction(
        name="undo", key="u", label="Undo", permission="images.review_image", tier="approval",
        status=ImageStatus.PENDING,
        one=lambda image_id, actor, reason: image_reset(image_id=image_id, actor=actor, note=UNDO_NOTE),
        many=_undo_many,
    ),
]


def tile_cursor(created_at: datetime, image_id: str) -> str:
    """The keyset position after a tile: its place in the queue's (created_at, id) order."""
    return f"{created_at.isoformat()}~{image_id}"


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    stamp, _, image_id = cursor.partition("~")
    try:
        created_at = datetime.fromisoformat(stamp)
    except ValueError:
        created_at = None
    if created_at is None or created_at.tzinfo is None or not image_id:
        raise RequestError(400, "VALIDATION_ERROR", "Invalid cursor", {"fields": {"after": ["Invalid cursor."]}})
    return created_at, image_id


class ReviewWorkspace:
    """The workspace's views; `actions` lists the decisions, which an app above images may extend."""

    template_name = "admin/review/workspace.html"
    page_size = PAGE_SIZE

    def __init__(self, site: admin.AdminSite | None = None) -> None:
        self.site = site or admin.site

    # --- Routes ------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        wrap = self.site.admin_view
        return [
            path("", wrap(require_GET(self.queue_view)), name="queue"),
            path("tiles/", wrap(require_GET(self.tiles_view)), name="tiles"),
            path("decide/", wrap(require_POST(self.decide_view)), name="decide"),
            path("generation/<str:generation_id>/", wrap(require_GET(self.generation_view)), name="generation"),
        ]

    @property
    def urls(self) -> tuple[list[URLPattern], str, str]:
        return self.get_urls(), "review", "review"

    # --- Decisions -------------------------------------------------------------------------------

    def actions(self) -> list[ReviewAction]:
        return list(REVIEW_ACTIONS)

    def allowed_actions(self, request: HttpRequest) -> list[ReviewAction]:
        return [action for action in self.actions() if request.user.has_perm(action.permission)]

    # --- Views -----------------------------------------------------------------------------------

    def may_view(self, request: HttpRequest) -> bool:
        user = request.user
        return user.has_perm("images.view_image") or user.has_perm("images.change_image")

    def queue_view(self, request: HttpRequest) -> HttpResponse:
        """The pending queue as tiles, oldest first, narrowed by the filters in the query string."""
        if not self.may_view(request):
            raise PermissionDenied
        try:
            filters = self._filters(request)
        except RequestError:
            # A hand-edited address with an unknown filter value shows the whole queue rather than an error page.
            filters = {}
        tiles, following = self.queue_page(**filters)
        generations = generations_of_images(images_pending(newest_first=True), limit=30)
        return self._render(request, {
            "title": "Review workspace",
            "mode": "queue",
            "pending_count": image_pending_count(),
            "tiles": tiles,
            "next": following,
            "filters": filters,
            "generation_choices": [
                (g["id"], f"{g['prompt'][:40]} ({date_format(localtime(g['created_at']), 'M j, H:i')})")
                for g in generations
            ],
        })

    def generation_view(self, request: HttpRequest, generation_id: str) -> HttpResponse:
        """Every image of one generation side by side, whatever its status, to pick the best of a batch."""
        if not self.may_view(request):
            raise PermissionDenied
        generation = get_object_or_404(Generation, pk=generation_id)
        rows = with_duplicate_prompt_marker(generation.images.all()).order_by("batch_index", "created_at", "id")
        return self._render(request, {
            "title": f"Generation: {generation.prompt[:80]}",
            "mode": "generation",
            "generation": generation,
            "tiles": [self.tile(row) for row in rows.values(*TILE_FIELDS, "duplicate")[:MAX_IDS]],
            "next": None,
            "filters": {},
        })

    def tiles_view(self, request: HttpRequest) -> JsonResponse:
        """The next page of the queue after `after` (keyset), with the same filters as the page."""
        try:
            if not self.may_view(request):
                raise RequestError(403, "FORBIDDEN", "You may not see the review queue")
            filters = self._filters(request)
            after = request.GET.get("after") or None
            tiles, following = self.queue_page(**filters, after=_parse_cursor(after) if after else None)
        except RequestError as exc:
            return _error_response(exc)
        return JsonResponse({"tiles": tiles, "next": following})

    def decide_view(self, request: HttpRequest) -> JsonResponse:
        """Apply one decision to one image or a selection: `{action, image_ids[], reason?}` → each image's outcome."""
        try:
            action, image_ids, reason = self._decision_input(request)
        except RequestError as exc:
            return _error_response(exc)
        decision = rate_limit_hit(tier=action.tier, ident=user_ident(request.user))
        if not decision.allowed:
            exc = RequestError(429, "RATE_LIMIT_EXCEEDED", f"Rate limit reached: retry in {decision.reset_seconds} s",
                               {"tier": decision.tier, "limit": decision.limit, "window_seconds": decision.window,
                                "retry_after": decision.reset_seconds})
            return _error_response(exc, headers=decision.headers())
        actor = admin_actor(request)
        if len(image_ids) == 1:
            results = [self._decide_one(action, image_ids[0], actor, reason)]
        else:
            results = self._decide_many(action, image_ids, actor, reason)
        self._explain_refusals(results)
        return JsonResponse({"action": action.name, "results": results}, headers=decision.headers())

    # --- Decision helpers --------------------------------------------------------------------------

    def _decision_input(self, request: HttpRequest) -> tuple[ReviewAction, list[str], str]:
        try:
            body = json_body_load(request.body or b"null")
        except MalformedBody as exc:
            raise RequestError(400, "MALFORMED_REQUEST", f"The body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise RequestError(400, "MALFORMED_REQUEST", "The body must be a JSON object")
        known = {action.name: action for action in self.actions()}
        name = body.get("action")
        if name not in known:
            raise RequestError(400, "VALIDATION_ERROR", "Unknown action",
                               {"fields": {"action": [f"One of: {', '.join(known)}."]}})
        action = known[name]
        if not request.user.has_perm(action.permission):
            raise RequestError(403, "FORBIDDEN", f"You may not {action.name} images")
        ids = body.get("image_ids")
        if (not isinstance(ids, list) or not 1 <= len(ids) <= MAX_IDS
                or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)):
            raise RequestError(400, "VALIDATION_ERROR", "image_ids must list 1 to 500 image ids",
                               {"fields": {"image_ids": [f"A list of 1 to {MAX_IDS} image ids."]}})
        reason = body.get("reason", "")
        form = RejectForm({"reason": reason if isinstance(reason, str) else None})
        if not isinstance(reason, str) or not form.is_valid():
            messages = form.errors.get("reason") or ["Enter a text."]
            raise RequestError(400, "VALIDATION_ERROR", "Invalid reason", {"fields": {"reason": list(messages)}})
        return action, list(dict.fromkeys(ids)), form.cleaned_data["reason"]

    def _decide_one(self, action: ReviewAction, image_id: str, actor: Actor, reason: str) -> dict[str, Any]:
        try:
            action.one(image_id, actor, reason)
        except DomainError as exc:
            return {"image_id": image_id, "ok": False, "code": exc.details.get("code") or exc.code,
                    "error": exc.message}
        return {"image_id": image_id, "ok": True, "status": action.status}

    def _decide_many(self, action: ReviewAction, image_ids: list[str], actor: Actor, reason: str) -> list[dict]:
        try:
            result = action.many(image_ids, actor, reason)
        except DomainError as exc:
            return [{"image_id": i, "ok": False, "code": exc.code, "error": exc.message} for i in image_ids]
        outcome: dict[str, dict[str, Any]] = {i: {"image_id": i, "ok": True, "status": action.status}
                                              for i in result.successful}
        for entry in result.skipped:
            outcome[entry["image_id"]] = {"image_id": entry["image_id"], "ok": False, "code": entry["code"],
                                          "error": entry["reason"]}
        for entry in result.failed:
            outcome[entry["image_id"]] = {"image_id": entry["image_id"], "ok": False, "code": entry["code"],
                                          "error": entry["error"]}
        return [outcome[i] for i in image_ids if i in outcome]

    def _explain_refusals(self, results: list[dict[str, Any]]) -> None:
        """Give each refused image its current status and who decided it last (someone else, usually)."""
        refused = [r["image_id"] for r in results if not r["ok"]]
        if not refused:
            return
        statuses = dict(Image.objects.filter(pk__in=refused).values_list("pk", "status"))
        latest: dict[str, dict[str, Any]] = {}
        for row in (ImageTransition.objects.filter(image_id__in=refused).order_by("-created_at", "-id")
                    .values("image_id", "to_status", "actor_label", "via", "created_at")):
            latest.setdefault(row["image_id"], row)
        for entry in results:
            if entry["ok"]:
                continue
            entry["status"] = statuses.get(entry["image_id"])
            last = latest.get(entry["image_id"])
            if last is not None:
                when = date_format(localtime(last["created_at"]), "H:i:s")
                entry["decided_by"] = f"{last['to_status']} by {last['actor_label']} ({last['via']}) at {when}"

    # --- Reads -----------------------------------------------------------------------------------

    def _filters(self, request: HttpRequest) -> dict[str, str]:
        filters = {}
        for name, allowed in (("quality", QUALITY_FILTERS), ("created", CREATED_FILTERS)):
            value = request.GET.get(name, "")
            if value and value not in allowed:
                raise RequestError(400, "VALIDATION_ERROR", f"Unknown {name} filter",
                                   {"fields": {name: [f"One of: {', '.join(allowed)}."]}})
            if value:
                filters[name] = value
        if generation := request.GET.get("generation", "").strip():
            filters["generation"] = generation
        return filters

    def queue_page(
        self,
        *,
        generation: str | None = None,
        quality: str | None = None,
        created: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the pending queue in its own order, after a keyset position; and the next position."""
        queryset = self.queue_rows(generation=generation, quality=quality, created=created, after=after)
        rows = list(queryset[: self.page_size + 1])
        following = None
        if len(rows) > self.page_size:
            rows = rows[: self.page_size]
            following = tile_cursor(rows[-1]["created_at"], rows[-1]["id"])
        return [self.tile(row) for row in rows], following

    @staticmethod
    def queue_rows(
        *,
        generation: str | None = None,
        quality: str | None = None,
        created: str | None = None,
        after: tuple[datetime, str] | None = None,
    ) -> QuerySet[Image]:
        """The tiles' rows of the pending queue in its order (oldest first), after a keyset position."""
        queryset = images_pending(generation_id=generation or None)
        if quality:
            queryset = queryset.filter(QUALITY_FILTERS[quality])
        if created:
            queryset = queryset.filter(created_at__gte=_created_since(created))
        if after is not None:
            created_at, image_id = after
            # The first condition alone is what the index's range starts at; the planners find no range in the
            # second (an OR), and walked the queue from its start up to the position.
            queryset = queryset.filter(Q(created_at__gte=created_at),
                                       Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=image_id))
        return with_duplicate_prompt_marker(queryset).values(*TILE_FIELDS, "duplicate")

    def tile(self, row: dict[str, Any]) -> dict[str, Any]:
        """What a tile shows and needs, as JSON."""
        pk = quote(row["id"])
        quality = row["quality"] or {}
        errors, warnings = quality.get("errors") or [], quality.get("warnings") or []
        if not row["quality_valid"]:
            count = len(errors) or 1
            badge = {"level": "error", "label": f"{count} error{'s' if count != 1 else ''}"}
        elif row["quality_warnings"]:
            count = row["quality_warnings"]
            badge = {"level": "warning", "label": f"{count} warning{'s' if count != 1 else ''}"}
        else:
            badge = {"level": "ok", "label": "print-ready"}
        badge["details"] = [*errors, *warnings]
        return {
            "id": row["id"],
            "status": row["status"],
            "prompt": row["prompt"],
            "width": row["width"],
            "height": row["height"],
            "dpi": row["dpi"],
            "quality": badge,
            "duplicate": bool(row.get("duplicate")),
            "generation": row["generation_id"],
            "slot": row["batch_index"] + 1 if row["batch_index"] is not None else None,
            "created": date_format(localtime(row["created_at"]), "M j, H:i"),
            "thumbnail_url": reverse("admin:images_image_thumbnail", args=[pk]) if row["thumbnail"] else None,
            "file_url": reverse("admin:images_image_file", args=[pk]),
            "change_url": reverse("admin:images_image_change", args=[pk]),
        }

    def _render(self, request: HttpRequest, context: dict[str, Any]) -> TemplateResponse:
        allowed = self.allowed_actions(request)
        reasons = list(QuickRejectReason.objects.values_list("text", flat=True)[:MAX_QUICK_REASONS])
        config = {
            "mode": context["mode"],
            "tiles": context["tiles"],
            "next": context["next"],
            "filters": context["filters"],
            "reasons": reasons,
            "actions": [{"name": a.name, "key": a.key, "label": a.label} for a in allowed],
            "urls": {
                "tiles": reverse("review:tiles"),
                "decide": reverse("review:decide"),
                "generation": reverse("review:generation", args=["__id__"]),
            },
        }
        full = {
            **self.site.each_context(request),
            **context,
            "actions": allowed,
            "action_names": {a.name for a in allowed},
            "reasons": reasons,
            "config": config,
            "quality_choices": [("valid", "Print-ready"), ("warnings", "With warnings"), ("errors", "With errors")],
            "created_choices": [("today", "Today"), ("7d", "Past 7 days"), ("30d", "Past 30 days")],
            "can_edit_reasons": request.user.has_perm("images.change_quickrejectreason"),
        }
        return TemplateResponse(request, self.template_name, full)


def _created_since(created: str) -> datetime:
    delta = CREATED_FILTERS[created]
    if delta is None:
        return localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return timezone.now() - delta
