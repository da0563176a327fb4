"""Forms of the review admin: the note of an approval, the reason for a rejection and a new generation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from core.text import clean_text, markup_found
from images.validation import GenerateInputSerializer


class PlainTextField(forms.CharField):
    """A text that leaves the gateway (history, webhooks): cleaned and refused with markup, as the API does."""

    def to_python(self, value: Any) -> str:
        return clean_text(super().to_python(value), fold_newlines=True)

    def validate(self, value: str) -> None:
        super().validate(value)
        if found := markup_found(value):
            raise forms.ValidationError(f"Markup is not allowed ({found} found).")


class RejectForm(forms.Form):
    """The reason recorded in every rejected image's history (and sent with `image.rejected`)."""

    reason = PlainTextField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "e.g. blurry edges, text misspelt, off-brief"}),
        help_text="Shown in each image's decision history and sent to webhook subscribers.",
    )


class ApproveForm(forms.Form):
    """The optional note recorded in each approved image's history (sent with `image.approved`)."""

    note = PlainTextField(required=False, max_length=1000)


# The form's own fields only describe the inputs; ranges, defaults and enums are checked by the API's
# serializer in `clean`, so the admin accepts exactly what `POST generate` accepts.
class GenerationStartForm(forms.Form):
    """Start a generation from the admin, validated by the same serializer as `POST generate`."""

    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="3–2000 characters, no markup.")
    negative_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    style = forms.CharField(required=False)
    genre = forms.CharField(required=False)
    batch_size = forms.IntegerField(initial=1, help_text="1–25 images.")
    width = forms.IntegerField(initial=4500, help_text="512–8192 px.")
    height = forms.IntegerField(initial=5400, help_text="512–8192 px.")
    steps = forms.IntegerField(initial=30, help_text="10–100.")
    guidance = forms.FloatField(initial=2.0, help_text="0.1–20 (CFG scale).")
    seed = forms.IntegerField(required=False, help_text="Optional, 0–4294967295; empty for a random seed.")
    backend = forms.ChoiceField(choices=[])
    allow_duplicate = forms.BooleanField(
        required=False, help_text="Start it even if an earlier generation had the same prompt and parameters."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [(name, name) for name in settings.GENERATION_BACKENDS]
        self.fields["backend"].initial = settings.GENERATION_BACKEND
        self.validated_data: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = {name: value for name, value in cleaned.items() if value not in (None, "")}
        serializer = GenerateInputSerializer(data=data)
        if serializer.is_valid():
            self.validated_data = dict(serializer.validated_data)
            return cleaned
        for name, messages in serializer.errors.items():
            field = name if name in self.fields else None
            for message in messages if isinstance(messages, list) else [messages]:
                self.add_error(field, str(message))
        return cleaned
