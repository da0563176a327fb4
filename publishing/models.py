"""Product templates (what to make from a design) and products (a design published somewhere)."""

from __future__ import annotations

from django.db import models

from core import ids
from images.models import Image


class Platform(models.TextChoices):
    PRINTIFY = "printify"
    # A folder with the print file and listing metadata, for marketplaces without an API.
    EXPORT = "export"


class ProductStatus(models.TextChoices):
    QUEUED = "queued"
    UPLOADING = "uploading"
    CREATED = "created"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class ProductTemplate(models.Model):
    """A Printify blueprint + provider + variants + placement + listing text, reusable across designs."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_template_id, editable=False)
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=16, choices=Platform.choices, default=Platform.PRINTIFY)
    blueprint_id = models.PositiveIntegerField(null=True, blank=True)
    print_provider_id = models.PositiveIntegerField(null=True, blank=True)
    variant_ids = models.JSONField(default=list, blank=True)
    price_cents = models.PositiveIntegerField(default=2999)
    position = models.CharField(max_length=32, default="front")
    x = models.FloatField(default=0.5)
    y = models.FloatField(default=0.5)
    scale = models.FloatField(default=1.0)
    angle = models.FloatField(default=0)
    title_template = models.CharField(max_length=500, default="{prompt}")
    description_template = models.TextField(default="{prompt}")
    tags = models.JSONField(default=list, blank=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=models.Q(is_default=True), name="one_default_template"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.platform})"


class Product(models.Model):
    """One design published (or being published) with a template; external ids kept as they are learnt."""

    id = models.CharField(primary_key=True, max_length=40, default=ids.new_product_id, editable=False)
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="product")
    template = models.ForeignKey(
        ProductTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    platform = models.CharField(max_length=16, choices=Platform.choices)
    status = models.CharField(max_length=16, choices=ProductStatus.choices, default=ProductStatus.QUEUED)
    title = models.CharField(max_length=500, blank=True, default="")
    description = models.TextField(blank=True, default="")
    price_cents = models.PositiveIntegerField(null=True, blank=True)
    # Listing tags and the Printify shop, fixed when publishing starts so a resumed run uses the same.
    tags = models.JSONField(default=list, blank=True)
    shop_id = models.CharField(max_length=40, blank=True, default="")
    # The pipeline task last enqueued for this product (django_tasks result id).
    task_id = models.CharField(max_length=64, blank=True, default="")
    # Printify's id for the uploaded print file, then for the product; each stored as soon as known.
    external_upload_id = models.CharField(max_length=100, blank=True, default="")
    external_id = models.CharField(max_length=100, blank=True, default="")
    external_url = models.URLField(max_length=1000, blank=True, default="")
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("publish_image", "Can publish approved images as products")]

    def __str__(self) -> str:
        return f"{self.id} {self.platform} ({self.status})"
