"""Admin forms for publishing: choosing the product template, and editing a template by hand."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.urls import reverse
from django.utils.html import format_html

from core.errors import InvalidInputError
from publishing.models import ProductTemplate
from publishing.services import TEMPLATE_FIELDS, product_template_validate

CATALOG_HINT = "Run manage.py printify_catalog --blueprint B --provider P to list the real ids."


class PublishForm(forms.Form):
    """The templates the selected images are published with: one product per image and template.

    The default templates are ticked to begin with; a template an image is already live on is skipped
    for that image.
    """

    templates = forms.ModelMultipleChoiceField(
        queryset=ProductTemplate.objects.order_by("name"), widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Tick at least one template."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["templates"]
        templates = list(ProductTemplate.objects.order_by("name").values_list("pk", "is_default"))
        field.initial = [pk for pk, is_default in templates if is_default] or (
            [templates[0][0]] if len(templates) == 1 else [])
        if not templates:
            field.help_text = format_html(
                'No product templates yet. <a href="{}">Add one</a> (blueprint, provider, variants, price), '
                "then publish again.", reverse("admin:publishing_producttemplate_add"),
            )
        else:
            field.help_text = "One product per ticked template; the default templates are ticked."


class ListField(forms.CharField):
    """A list typed as comma-separated values (a JSON list is accepted too)."""

    def __init__(self, *, item: type = str, **kwargs: Any) -> None:
        self.item = item
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return value
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list:
        text = super().to_python(value).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise forms.ValidationError("Enter comma-separated values, or a JSON list") from None
            if not isinstance(items, list):
                raise forms.ValidationError("Enter comma-separated values, or a JSON list")
        else:
            items = [part for part in re.split(r"[,\s]+" if self.item is int else r",", text) if part.strip()]
        try:
            values = [self.item(str(item).strip()) for item in items]
        except ValueError:
            raise forms.ValidationError(f"“{text}” is not a list of whole numbers") from None
        return [v for v in values if v != ""]


class ProductTemplateForm(forms.ModelForm):
    variant_ids = ListField(
        item=int, label="Variant ids",
        help_text=f"Comma-separated Printify variant ids, e.g. 32918, 32919. {CATALOG_HINT}",
    )
    tags = ListField(help_text="Comma-separated, e.g. hoodie, retro, sunset.")

    class Meta:
        model = ProductTemplate
        fields = [
            "name", "platform", "is_default", "blueprint_id", "print_provider_id", "variant_ids", "price_cents",
            "variant_prices", "position", "x", "y", "scale", "angle", "title_template", "description_template", "tags",
        ]
        help_texts = {
            "name": "What publishers pick, e.g. “Gildan 18500 hoodie, front, $34.99”.",
            "blueprint_id": f"The Printify product type. {CATALOG_HINT}",
            "print_provider_id": "The Printify print provider of that blueprint.",
            "price_cents": "Retail price in cents: 3499 is $34.99.",
            "variant_prices": 'Prices of the variants that cost more, e.g. {"12102": 2899} (variant id → cents).',
            "is_default": "Ticked when publishing (several templates may be default).",
        }

    def _get_validation_exclusions(self) -> set[str]:
        # Kept from when a single default was enforced; `is_default` has no constraint left to check.
        return super()._get_validation_exclusions() | {"is_default"}

    def clean_variant_prices(self) -> Any:
        # An empty field is no per-variant price (the JSON form field reads it as None).
        value = self.cleaned_data.get("variant_prices")
        return {} if value in (None, "") else value

    def clean(self) -> dict[str, Any]:
        """Check the template with the service's rules, so the admin refuses exactly what the API refuses."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        instance = self.instance if self.instance.pk and not self.instance._state.adding else None
        data = {name: value for name, value in cleaned.items() if name in TEMPLATE_FIELDS}
        try:
            values = product_template_validate(data, instance=instance)
        except InvalidInputError as exc:
            for name, messages in exc.fields.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, message)
            return cleaned
        cleaned.update(values)
        return cleaned


def _size_key(size: str) -> str:
    return "surcharge_" + re.sub(r"[^0-9A-Za-z]+", "_", size).strip("_").lower()


class CatalogTemplateForm(forms.Form):
    """A template from a blueprint and print provider of Printify's catalog: the variants ticked by colour
    and size (Printify's names), a base price and a surcharge per size for the sizes that cost more."""

    name = forms.CharField(max_length=200)
    variants = forms.TypedMultipleChoiceField(coerce=int, widget=forms.CheckboxSelectMultiple,
                                              error_messages={"required": "Tick at least one variant."})
    position = forms.ChoiceField(help_text="Where the design goes (Printify's print areas of these variants).")
    price_cents = forms.IntegerField(min_value=1, initial=2999, label="Base price (cents)")
    title_template = forms.CharField(max_length=500, initial="{prompt}", help_text="{prompt} and {style} are replaced.")
    is_default = forms.BooleanField(required=False, label="Default",
                                    help_text="Default templates are ticked when publishing.")

    def __init__(self, *args: Any, variants: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog_variants = variants
        self.fields["variants"].choices = [(v["id"], str(v.get("title") or v["id"])) for v in variants]
        self.fields["variants"].initial = [v["id"] for v in variants]
        positions = list(dict.fromkeys(p.get("position") for v in variants for p in v.get("placeholders") or []
                                       if p.get("position")))
        self.fields["position"].choices = [(p, p) for p in positions or ["front"]]
        sizes = (str((v.get("options") or {}).get("size") or "") for v in variants)
        self.sizes = [size for size in dict.fromkeys(sizes) if size]
        for size in self.sizes:
            self.fields[_size_key(size)] = forms.IntegerField(
                min_value=0, required=False, label=f"{size} surcharge (cents)",
                help_text=f"Added to the base price for size {size}; empty: none.",
            )

    def template_data(self) -> dict[str, Any]:
        """The template's fields, for `product_template_create`."""
        data = self.cleaned_data
        size_of = {v["id"]: str((v.get("options") or {}).get("size") or "") for v in self.catalog_variants}
        prices = {}
        for variant_id in data["variants"]:
            surcharge = data.get(_size_key(size_of.get(variant_id, ""))) if size_of.get(variant_id) else None
            if surcharge:
                prices[str(variant_id)] = data["price_cents"] + surcharge
        return {
            "name": data["name"], "platform": "printify", "variant_ids": list(data["variants"]),
            "price_cents": data["price_cents"], "variant_prices": prices, "position": data["position"],
            "title_template": data["title_template"], "is_default": data["is_default"],
        }
