"""Input rules for generation requests (CONTRACT §4): cleaning, prompt checks, ranges, the prompt hash.

The API view, the `generate` command and the admin form all validate with `GenerateInputSerializer`,
so a request is refused (or accepted) the same way whichever door it comes through.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers

from api.fields import (
    CleanCharField,
    StrictBooleanField,
    StrictFloatField,
    StrictIntegerField,
    choice_field,
    refuse_markup,
)
from core.text import clean_text
from images.backends.registry import configuration_error

PROMPT_MIN_LENGTH = 3
PROMPT_MAX_LENGTH = 2000
SEED_MAX = 4294967295

_WHITESPACE = re.compile(r"\s+")


def validate_prompt(value: str) -> str:
    """A cleaned prompt of 3–2000 characters without markup; raises ValidationError otherwise."""
    if not isinstance(value, str):
        raise serializers.ValidationError("Not a valid string.")
    prompt = clean_text(value, fold_newlines=True)
    if len(prompt) < PROMPT_MIN_LENGTH:
        raise serializers.ValidationError(f"Ensure this field has at least {PROMPT_MIN_LENGTH} characters.")
    if len(prompt) > PROMPT_MAX_LENGTH:
        raise serializers.ValidationError(f"Ensure this field has no more than {PROMPT_MAX_LENGTH} characters.")
    return refuse_markup(prompt)


def normalise_prompt(prompt: str) -> str:
    """The form of a prompt that two requests must share to count as the same prompt."""
    return _WHITESPACE.sub(" ", clean_text(prompt, fold_newlines=True)).casefold()


def prompt_hash(*, prompt: str, width: int, height: int, steps: int, guidance: float, seed: int | None) -> str:
    """sha256 over the normalised prompt and the parameters that change the picture."""
    material: dict[str, Any] = {
        "prompt": normalise_prompt(prompt),
        "width": int(width),
        "height": int(height),
        "steps": int(steps),
        "guidance": round(float(guidance), 4),
    }
    if seed is not None:
        material["seed"] = int(seed)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class PromptField(CleanCharField):
    def to_internal_value(self, data: Any) -> str:
        return validate_prompt(super().to_internal_value(data))


def _choice_messages(choices: tuple[str, ...]) -> dict[str, str]:
    return {"invalid_choice": f'"{{input}}" is not a valid choice. Allowed: {", ".join(choices)}.'}


class GenerateInputSerializer(serializers.Serializer):
    """Every field of `POST generate` with its range and default; `cfg_scale` is read as `guidance`."""

    prompt = PromptField(max_length=PROMPT_MAX_LENGTH)
    style = CleanCharField(max_length=100, required=False, allow_blank=True, default="")
    genre = CleanCharField(max_length=100, required=False, allow_blank=True, default="")
    negative_prompt = CleanCharField(max_length=PROMPT_MAX_LENGTH, required=False, allow_blank=True, default="")
    batch_size = StrictIntegerField(min_value=1, max_value=25, default=1)
    width = StrictIntegerField(min_value=512, max_value=8192, default=4500)
    height = StrictIntegerField(min_value=512, max_value=8192, default=5400)
    steps = StrictIntegerField(min_value=10, max_value=100, default=30)
    guidance = StrictFloatField(min_value=0.1, max_value=20, default=2.0)
    seed = StrictIntegerField(min_value=0, max_value=SEED_MAX, required=False, allow_null=True, default=None)
    backend = choice_field(settings.GENERATION_BACKENDS, required=False)
    allow_duplicate = StrictBooleanField(default=False)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping) and "cfg_scale" in data and "guidance" not in data:
            data = {**data, "guidance": data["cfg_scale"]}
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Read at validation time so a changed GENERATION_BACKEND (tests, .env reload) is honoured.
        attrs["backend"] = attrs.get("backend") or settings.GENERATION_BACKEND
        problem = configuration_error(attrs["backend"])
        if problem:
            raise serializers.ValidationError({"backend": [problem]})
        return attrs
