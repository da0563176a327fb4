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
            "position", "x", "y", "scale", "angle", "title_template", "description_template", "tags",
        ]
        help_texts = {
            "name": "What publishers pick, e.g. “Gildan 18500 hoodie, front, $34.99”.",
            "blueprint_id": f"The Printify product type. {CATALOG_HINT}",
            "print_provider_id": "The Printify print provider of that blueprint.",
            "price_cents": "Retail price in cents: 3499 is $34.99.",
            "is_default": "Used when publishing without choosing a template.",
        }

    def _get_validation_exclusions(self) -> set[str]:
        # Marking a second default is how the default changes: the service unmarks the old one, so the
        # single-default constraint must not refuse the form first.
        return super()._get_validation_exclusions() | {"is_default"}

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
