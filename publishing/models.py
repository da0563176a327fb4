"""Product templates (what to make from a design) and products (a design published somewhere)."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models

from core import ids
from core.models import StatusChange
from images.models import Image

# The limits of templates and products, declared once: the columns, the services' checks and the
# API's documentation all use these.
TEMPLATE_NAME_MAX = 200
TITLE_MAX = 255  # a product's title, rendered from a template or given when publishing
TITLE_TEMPLATE_MAX = 500
DESCRIPTION_MAX = 20_000  # a product's description given when publishing
DESCRIPTION_TEMPLATE_MAX = 5_000
POSITION_MAX = 32
PRICE_MAX_CENTS = 10_000_000
# Printify's blueprint, provider and variant ids; the integer column holds up to this on every database.
PRINTIFY_ID_MAX = 2_147_483_647
VARIANTS_MAX = 500
TAGS_MAX = 50
TAG_MAX = 100
SCALE_MIN, SCALE_MAX = 0.01, 10
ANGLE_MIN, ANGLE_MAX = -360, 360


class Platform(models.TextChoices):
    PRINTIFY = "printify"
    # A folder with the print file and listing metadata, for marketplaces without an API.
    EXPORT = "export"


def validate_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValidationError("Enter a finite number.")


def validate_whole_degrees(value: float) -> None:
    if math.isfinite(value) and not float(value).is_integer():
        raise ValidationError("Enter a whole number of degrees.")


def validate_variant_ids(value: Any) -> None:
    """A list of at most VARIANTS_MAX Printify variant ids (whole numbers ≥ 1)."""
    if not isinstance(value, list):
        raise ValidationError("Enter a list of variant ids.")
    if len(value) > VARIANTS_MAX:
        raise ValidationError(f"At most {VARIANTS_MAX} variants.")
    bad = [item for item in value if type(item) is not int or not 1 <= item <= PRINTIFY_ID_MAX]
    if bad:
        raise ValidationError(
            f"Variant ids are whole numbers from 1 to {PRINTIFY_ID_MAX}; not {', '.join(map(repr, bad[:5]))}."
        )


def validate_variant_prices(value: Any) -> None:
    """Variant id (as text) → price in cents, for at most VARIANTS_MAX variants."""
    if not isinstance(value, dict):
        raise ValidationError("Enter an object of variant id → price in cents.")
    if len(value) > VARIANTS_MAX:
        raise ValidationError(f"At most {VARIANTS_MAX} variants.")
    for key, cents in value.items():
        if not (isinstance(key, str) and key.isdigit() and 1 <= int(key) <= PRINTIFY_ID_MAX):
            raise ValidationError(f"{key!r} is not a variant id.")
        if type(cents) is not int or not 1 <= cents <= PRICE_MAX_CENTS:
            raise ValidationError(f"The price of variant {key} must be a whole number of cents, 1–{PRICE_MAX_CENTS}.")


def validate_tags(value: Any) -> None:
    """A list of at most TAGS_MAX tags, each a text of 1 to TAG_MAX characters."""
    if not isinstance(value, list):
        raise ValidationError("Enter a list of tags.")
    if len(value) > TAGS_MAX:
        raise ValidationError(f"At most {TAGS_MAX} tags.")
    if any(not isinstance(tag, str) for tag in value):
        raise ValidationError("Each tag is a text.")
    if any(not 1 <= len(tag) <= TAG_MAX for tag in value):
        raise ValidationError(f"Each tag has 1 to {TAG_MAX} characters.")


def _id_validators() -> list:
    return [MinValueValidator(1), MaxValueValidator(PRINTIFY_ID_MAX)]


class ProductStatus(models.TextChoices):
    QUEUED = "queued"
    UPLOADING = "uploading"
    CREATED = "created"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class ProductTemplate(models.Model):
    """A Printify blueprint + provider + variants + placement + listing text, reusable across designs.

    Each field carries its own rules; `publishing.services.product_template_validate` adds the one that
    spans fields (a Printify template needs blueprint, provider and variants) and is what every writer uses.
    """

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_template_id, editable=False)
    name = models.CharField(max_length=TEMPLATE_NAME_MAX)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.PRINTIFY)
    blueprint_id = models.PositiveIntegerField(null=True, blank=True, validators=_id_validators())
    print_provider_id = models.PositiveIntegerField(null=True, blank=True, validators=_id_validators())
    variant_ids = models.JSONField(default=list, blank=True, validators=[validate_variant_ids])
    price_cents = models.PositiveIntegerField(
        default=2999, validators=[MinValueValidator(1), MaxValueValidator(PRICE_MAX_CENTS)]
    )
    # Prices of single variants (variant id as text → cents), e.g. the larger sizes; the others cost price_cents.
    variant_prices = models.JSONField(default=dict, blank=True, validators=[validate_variant_prices])
    # Where the design goes (Printify's placeholder position: front, back, …).
    position = models.CharField(max_length=POSITION_MAX, default="front")
    # Placement within the print area: centre x and y as fractions of it, scale, angle in degrees.
    x = models.FloatField(default=0.5, validators=[validate_finite, MinValueValidator(0), MaxValueValidator(1)])
    y = models.FloatField(default=0.5, validators=[validate_finite, MinValueValidator(0), MaxValueValidator(1)])
    scale = models.FloatField(
        default=1.0, validators=[validate_finite, MinValueValidator(SCALE_MIN), MaxValueValidator(SCALE_MAX)]
    )
    angle = models.FloatField(default=0, validators=[
        validate_finite, validate_whole_degrees, MinValueValidator(ANGLE_MIN), MaxValueValidator(ANGLE_MAX),
    ])
    title_template = models.CharField(max_length=TITLE_TEMPLATE_MAX, default="{prompt}")
    description_template = models.TextField(
        default="{prompt}", blank=True, validators=[MaxLengthValidator(DESCRIPTION_TEMPLATE_MAX)]
    )
    tags = models.JSONField(default=list, blank=True, validators=[validate_tags])
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Several templates may be default: publishing without naming one makes a product of each.
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"


class Product(models.Model):
    """One design published (or being published) with a template; external ids kept as they are learnt."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_product_id, editable=False)
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="products")
    template = models.ForeignKey(
        ProductTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    status = models.CharField(max_length=16, choices=ProductStatus.choices, default=ProductStatus.QUEUED)
    title = models.CharField(max_length=TITLE_MAX, blank=True, default="")
    description = models.TextField(blank=True, default="")
    price_cents = models.PositiveIntegerField(null=True, blank=True)
    # The template's per-variant prices when publishing started (empty when a price was given for all).
    variant_prices = models.JSONField(default=dict, blank=True)
    # Listing tags and the Printify shop, fixed when publishing starts so a resumed run uses the same.
    tags = models.JSONField(default=list, blank=True)
    shop_id = models.CharField(max_length=40, blank=True, default="")
    # The pipeline task last enqueued for this product (django_tasks result id).
    task_id = models.CharField(max_length=64, blank=True, default="")
    # Printify's id for the uploaded print file (the design's `PrintFile`, shared by all its products),
    # then for the product; each stored as soon as known.
    external_upload_id = models.CharField(max_length=100, blank=True, default="")
    external_id = models.CharField(max_length=100, blank=True, default="")
    # When the first create request for this product was sent (committed before sending). Set while
    # `external_id` is empty, it means Printify may have made the product: look for it before creating.
    create_requested_at = models.DateTimeField(null=True, blank=True)
    external_url = models.URLField(max_length=1000, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    # Printify's product images once it is created: [{src, position, variant_ids, is_default}].
    mockups = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("publish_image", "Can publish approved images as products")]
        constraints = [
            # One design is live at most once per template; a failed product may be queued again.
            models.UniqueConstraint(
                fields=["image", "template"], condition=~models.Q(status="failed"), name="one_live_product_per_template"
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.platform} ({self.status})"


class PrintFile(models.Model):
    """A design's print file on Printify: uploaded once, its upload id reused by every product of the design."""

    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="print_file", primary_key=True)
    external_upload_id = models.CharField(max_length=100, blank=True, default="")
    # Set (and committed) before the first upload is sent: a later run that finds it set but no id
    # looks for the upload Printify may already have before sending the file again.
    upload_requested_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.image_id}: {self.external_upload_id or 'not uploaded'}"


class ProductTransition(StatusChange):
    """Append-only record of one product status change (queued → uploading → created → publishing → …)."""

    product = models.ForeignKey(
        Product, on_delete=models.DO_NOTHING, db_constraint=False, related_name="history"
    )

    def __str__(self) -> str:
        return f"{self.product_id}: {self.from_status or '∅'} → {self.to_status} by {self.actor_label}"
