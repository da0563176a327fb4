"""Serializer fields that carry the input rules of CONTRACT §4, shared by every app's API."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from core.batch import MAX_BATCH_IDS
from core.text import clean_text, markup_found

ID_MAX_LENGTH = 40
# An id that cleaning, trimming and the markup check would all return unchanged.
_PLAIN_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{ID_MAX_LENGTH}}}")


def refuse_markup(value: str) -> str:
    """Raise ValidationError if `value` contains markup or script patterns."""
    if found := markup_found(value):
        raise serializers.ValidationError(f"Markup is not allowed ({found} found).")
    return value


class CleanCharField(serializers.CharField):
    """A string, trimmed, with control characters removed (instead of refusing NUL).

    `fold_newlines` folds newlines into spaces (one-line texts); `allow_markup=False` refuses markup
    and script patterns (texts shown in listings and admin pages as plain text).
    """

    def __init__(self, *, fold_newlines: bool = True, allow_markup: bool = False, **kwargs: Any) -> None:
        self.fold_newlines = fold_newlines
        self.allow_markup = allow_markup
        super().__init__(**kwargs)

    def run_validation(self, data: Any = serializers.empty) -> Any:
        if isinstance(data, str):
            # Cleaning only shrinks a string; refuse absurd sizes before spending time on them.
            if self.max_length is not None and len(data) > 10 * self.max_length + 1000:
                self.fail("max_length", max_length=self.max_length)
            data = clean_text(data, fold_newlines=self.fold_newlines)
        return super().run_validation(data)

    def to_internal_value(self, data: Any) -> str:
        # DRF's CharField would turn a JSON number into text; a text must be sent as a string.
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        return value if self.allow_markup else refuse_markup(value)


class IdField(CleanCharField):
    """An opaque object id as given in a body or a query: 1-40 of `A-Z a-z 0-9 _ -` (what every id is made of).

    Anything else cannot name an object, so it is refused (400) rather than looked up and reported missing.
    """

    default_error_messages = {"invalid_id": "Not a valid id (1-40 letters, digits, '_' or '-')."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", ID_MAX_LENGTH)
        super().__init__(fold_newlines=False, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value and not _PLAIN_ID.fullmatch(value):
            self.fail("invalid_id")
        return value


class IdListField(serializers.ListField):
    """1 to MAX_BATCH_IDS ids, as the batch actions take them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=IdField(), min_length=1, max_length=MAX_BATCH_IDS, **kwargs)

    def run_child_validation(self, data: list) -> list:
        # 500 ids through the child field cost more than the batch's SQL; ids made only of id
        # characters pass it unchanged, so they skip it. Anything else gets the full check and its errors.
        if all(type(item) is str and _PLAIN_ID.fullmatch(item) for item in data):
            return list(data)
        return super().run_child_validation(data)


# Serializer context key: the input is text (command-line options), where "3" is how a number is written.
TEXT_INPUT = "text_input"


def _text_input(field: serializers.Field) -> bool:
    return bool(getattr(field.root, "_context", None) and field.root.context.get(TEXT_INPUT))


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: `"3"`, `3.0` and `true` are refused (DRF would read them as 3, 3 and 1).

    Text input (`context={TEXT_INPUT: True}`, the commands) is read as DRF reads it.
    """

    default_error_messages = {"invalid": "A whole number is required (a JSON number such as 3, not a string)."}

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int and not _text_input(self):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A JSON number (integer or decimal): `"2.5"` and `true` are refused (Python would read `true` as 1.0)."""

    default_error_messages = {"invalid": "A number is required (a JSON number such as 2.5, not a string)."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or (not isinstance(data, int | float) and not _text_input(self)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON `true` or `false`: `"yes"`, `"true"`, `1` and `"on"` are refused (DRF would read them as true)."""

    default_error_messages = {"invalid": "Must be true or false (a JSON boolean, not a string or a number)."}

    def to_internal_value(self, data: Any) -> bool:
        if type(data) is not bool and not _text_input(self):
            self.fail("invalid")
        return super().to_internal_value(data)


def choice_field(choices: Iterable[str], **kwargs: Any) -> serializers.ChoiceField:
    """An enum whose refusal names the allowed values (CONTRACT §4 input rules)."""
    choices = list(choices)
    return serializers.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not a valid choice. Allowed: {", ".join(choices)}.'},
        **kwargs,
    )
