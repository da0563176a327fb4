"""Generations, the images they produce (or that were imported/uploaded), and the review history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from core import ids
from core.models import StatusChange


class GenerationStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ImageStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class ImageSource(models.TextChoices):
    GENERATED = "generated"
    IMPORTED = "imported"
    UPLOADED = "uploaded"


class Generation(models.Model):
    """One request to turn a prompt into `batch_size` images on a generation backend."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_generation_id, editable=False)
    status = models.CharField(max_length=16, choices=GenerationStatus.choices, default=GenerationStatus.QUEUED)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True, default="")
    style = models.CharField(max_length=100, blank=True, default="")
    genre = models.CharField(max_length=100, blank=True, default="")
    backend = models.CharField(max_length=16)
    # width, height, steps, guidance, seed, batch_size as validated.
    params = models.JSONField(default=dict)
    prompt_hash = models.CharField(max_length=64, db_index=True)
    # Remote job ids per batch index, written before polling starts so a restarted worker resumes.
    external_jobs = models.JSONField(default=dict, blank=True)
    success_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    # The X-Request-ID of the request that asked for it, passed on to the backend's HTTP calls.
    request_id = models.CharField(max_length=128, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status}) {self.prompt[:60]}"

    @property
    def batch_size(self) -> int:
        return int(self.params.get("batch_size", 1))


def image_upload_to(instance: Image, filename: str) -> str:
    return f"images/{instance.created_at:%Y/%m}/{instance.id}{_suffix(filename)}"


def thumbnail_upload_to(instance: Image, filename: str) -> str:
    return f"thumbnails/{instance.created_at:%Y/%m}/{instance.id}.jpg"


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot != -1 else ""


class Image(models.Model):
    """A design in the review queue: the print file, its facts and quality report, and its status."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_image_id, editable=False)
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.PENDING)
    source = models.CharField(max_length=16, choices=ImageSource.choices, default=ImageSource.GENERATED)
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    # Position in the generation's batch; unique per generation so a resumed job never adds a twin.
    batch_index = models.PositiveIntegerField(null=True, blank=True)
    prompt = models.TextField(blank=True, default="")
    file = models.FileField(upload_to=image_upload_to, max_length=255)
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    dpi = models.PositiveIntegerField(null=True, blank=True)
    format = models.CharField(max_length=16, blank=True, default="")
    color_mode = models.CharField(max_length=16, blank=True, default="")
    file_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, db_index=True)
    quality = models.JSONField(default=dict, blank=True)
    quality_valid = models.BooleanField(default=True, db_index=True)
    quality_warnings = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Indexed with the id below (image_created_order), which serves its ranges and its order.
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # 0 while pending, 1 once decided: the review queue's "pending first" as a column an index can order.
    review_rank = models.GeneratedField(
        expression=models.Case(
            models.When(status=ImageStatus.PENDING, then=models.Value(0)), default=models.Value(1)
        ),
        output_field=models.PositiveSmallIntegerField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # Each serves one order of the review queue, in both directions, without sorting the table.
        indexes = [
            models.Index(fields=["review_rank", "-created_at", "-id"], name="image_queue_order"),
            models.Index(fields=["status", "-created_at", "-id"], name="image_status_order"),
            models.Index(fields=["created_at", "id"], name="image_created_order"),
            models.Index(fields=["quality_valid", "-created_at", "-id"], name="image_quality_order"),
        ]
        permissions = [("review_image", "Can approve, reject and reset images")]
        constraints = [
            models.UniqueConstraint(
                fields=["generation", "batch_index"],
                condition=models.Q(generation__isnull=False),
                name="image_unique_generation_slot",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class ImageTransition(StatusChange):
    """Append-only record of one image status change, kept after the image is deleted (a final `deleted` row).

    Also records a replaced print file (from and to the same status, the old and new file in `details`).
    """

    # No database constraint and DO_NOTHING: the history outlives the image, whose id stays readable.
    image = models.ForeignKey(
        Image, on_delete=models.DO_NOTHING, db_constraint=False, related_name="history"
    )

    def __str__(self) -> str:
        return f"{self.image_id}: {self.from_status or '∅'} → {self.to_status} by {self.actor_label}"


class GenerationTransition(StatusChange):
    """Append-only record of one generation status change (queued → running → completed | failed | cancelled)."""

    generation = models.ForeignKey(
        Generation, on_delete=models.DO_NOTHING, db_constraint=False, related_name="history"
    )

    def __str__(self) -> str:
        return f"{self.generation_id}: {self.from_status or '∅'} → {self.to_status} by {self.actor_label}"


class QuickRejectReason(models.Model):
    """A reason a reviewer picks by number when rejecting in the review workspace (`r` then a digit)."""

    text = models.CharField(max_length=200, unique=True)
    # Lower first; the first nine are reachable by the digits 1–9.
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name = "quick reject reason"

    def __str__(self) -> str:
        return self.text
