"""Input and output shapes of the images API (CONTRACT §4); input rules come from images.validation."""

from __future__ import annotations

import datetime
import functools
import operator
import re
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import orjson
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.fields.reverse_related import ManyToOneRel
from django.db.models.query_utils import DeferredAttribute
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone, translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.relations import ManyRelatedField, RelatedField
from rest_framework.request import Request
from rest_framework.reverse import reverse
from rest_framework.settings import ISO_8601, api_settings

from api.fields import CleanCharField, IdField, IdListField, StrictBooleanField, choice_field
from core.db.keyed import KeysFrom, values_in_later
from images import relations
from images.models import Generation, GenerationStatus, GenerationTransition, Image, ImageStatus, ImageTransition
from images.validation import validate_prompt

# --- Output ------------------------------------------------------------------------------------

class GenerationHistoryEntrySerializer(serializers.ModelSerializer):
    """One recorded status change of a generation."""

    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = GenerationTransition
        fields = ["from_status", "to_status", "actor", "via", "note", "created_at"]


class GenerationSerializer(serializers.ModelSerializer):
    """A generation with the ids of the images it has produced so far, and its status history."""

    image_ids = serializers.SerializerMethodField()
    history = GenerationHistoryEntrySerializer(many=True, read_only=True)

    class Meta:
        model = Generation
        fields = [
            "id", "status", "prompt", "negative_prompt", "style", "genre", "backend", "params", "prompt_hash",
            "image_ids", "success_count", "failed_count", "error", "history", "created_at", "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_image_ids(self, generation: Generation) -> list[str]:
        # Reads the prefetched `images` (ordered by batch index in the view's queryset).
        return [image.id for image in generation.images.all()]


class HistoryEntrySerializer(serializers.ModelSerializer):
    """One recorded status change."""

    actor = serializers.CharField(source="actor_label")

    class Meta:
        model = ImageTransition
        fields = ["from_status", "to_status", "actor", "via", "note", "created_at"]

    # Every field reads only the entry's own columns: RowRenderer keeps each entry's body (RowMemo), and
    # the next page showing the entry copies it. Declared for this class alone.
    row_memo_per_request = ()

    def row_memo_context(self) -> Hashable:
        return ()


class ImageProductSerializer(serializers.Serializer):
    """A product made from an image."""

    id = serializers.CharField()
    status = serializers.CharField()
    platform = serializers.CharField()
    template = serializers.CharField(allow_null=True)
    external_url = serializers.CharField()


class QualityInfoSerializer(serializers.Serializer):
    resolution = serializers.DictField(child=serializers.IntegerField(), required=False)
    format = serializers.CharField(required=False)
    color_mode = serializers.CharField(required=False)
    dpi = serializers.IntegerField(required=False, allow_null=True)
    file_size_mb = serializers.FloatField(required=False)
    print_size_inches = serializers.DictField(child=serializers.FloatField(allow_null=True), required=False)
    has_transparency = serializers.BooleanField(required=False)


class QualitySerializer(serializers.Serializer):
    """The quality report of CONTRACT §6."""

    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    info = QualityInfoSerializer()


class ImageSerializer(serializers.ModelSerializer):
    """An image with its facts, quality report, history, product and the URLs of its bytes.

    `context["products"]`, when given, holds the products of every image being rendered (the list asks
    for a page's at once); without it each image asks for its own.
    """

    generation = serializers.CharField(source="generation_id", allow_null=True, read_only=True)
    quality = serializers.SerializerMethodField()
    history = HistoryEntrySerializer(many=True, read_only=True)
    products = serializers.SerializerMethodField()
    product = serializers.SerializerMethodField()
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = [
            "id", "status", "source", "generation", "prompt", "width", "height", "dpi", "format", "file_size",
            "sha256", "file_url", "thumbnail_url", "quality", "history", "products", "product", "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    # RowRenderer may give a row the body it rendered before for the same column values (see RowMemo):
    # every field but the nested history and these reads only the image's columns and what
    # row_memo_context() returns. Declared for this class alone; a subclass declares its own.
    row_memo_per_request = ("products", "product")
    # What the methods below read besides the id: a list page selects these and the fields' columns only.
    row_method_columns = ("quality", "quality_valid", "thumbnail")

    def row_memo_context(self) -> Hashable:
        """What the remembered fields read besides the row: the stems of this request's file URLs."""
        return self._file_url.stem, self._thumbnail_url.stem

    @extend_schema_field(ImageProductSerializer(many=True))
    def get_products(self, image: Image) -> list[dict[str, Any]]:
        """Every product of the image, newest first."""
        products = self._products_given
        if products is None:
            # Asked once per image: `product` below reads the same answer.
            own = vars(self).setdefault("_own_products", {})
            if image.id not in own:
                own.update(relations.product_summaries([image.id]) or {image.id: []})
            products = own
        return products.get(image.id, [])

    @functools.cached_property
    def _products_given(self) -> dict[str, list[dict[str, Any]]] | None:
        # Looked up once: `context` walks up to the root serializer, twice per image otherwise.
        return self.context.get("products")

    @extend_schema_field(ImageProductSerializer(allow_null=True))
    def get_product(self, image: Image) -> dict[str, Any] | None:
        """The most recent product (kept for v1 clients; v2 has only `products`)."""
        products = self.get_products(image)
        return products[0] if products else None

    @extend_schema_field(QualitySerializer)
    def get_quality(self, image: Image) -> dict[str, Any]:
        return quality_data(image.quality, image.quality_valid)

    # Reversed once per serializer: a page of 50 would otherwise cost 100 reverse() calls.
    @functools.cached_property
    def _file_url(self) -> Callable[[str], str]:
        return _url_maker("image-file", self.context["request"])

    @functools.cached_property
    def _thumbnail_url(self) -> Callable[[str], str]:
        return _url_maker("image-thumbnail", self.context["request"])

    @extend_schema_field(OpenApiTypes.URI)
    def get_file_url(self, image: Image) -> str:
        return self._file_url(image.id)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_thumbnail_url(self, image: Image) -> str | None:
        return self._thumbnail_url(image.id) if image.thumbnail else None


def quality_data(quality: dict | None, quality_valid: bool) -> dict[str, Any]:
    """The `quality` member of an image's representation, from its stored report."""
    quality = quality or {}
    return {
        "valid": bool(quality.get("valid", quality_valid)),
        "errors": list(quality.get("errors", [])),
        "warnings": list(quality.get("warnings", [])),
        "info": quality.get("info", {}),
    }


_URL_SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")
_PK_MARK = "pk-mark"


def _url_maker(name: str, request: Request) -> Callable[[str], str]:
    """`id → reverse(name, pk=id, request=request)`, reversing once and reusing the prefix and suffix."""
    before, after = _url_stem(name, request)

    def url(image_id: str) -> str:
        if _URL_SAFE_ID.fullmatch(image_id):  # nothing for reverse() to quote
            return f"{before}{image_id}{after}"
        return reverse(name, kwargs={"pk": image_id}, request=request)

    url.stem = (before, after)  # the same for two requests: the same URL for every id
    return url


# The stems reversed before, by everything reverse() reads from the request and the thread: two per
# request otherwise (a list page and a decision's answer both render an image), each a walk of the URL
# resolver costing a tenth of a small request. Few keys (a name, a version, a host); emptied when a
# setting changes (ROOT_URLCONF, the hosts) and when it holds MAX_STEMS.
_STEMS: dict[tuple[Any, ...], tuple[str, str]] = {}
MAX_STEMS = 256


def _url_stem(name: str, request: Request) -> tuple[str, str]:
    scheme = getattr(request, "versioning_scheme", None)
    format_override = api_settings.URL_FORMAT_OVERRIDE
    key = (name, type(scheme), getattr(request, "version", None), get_urlconf(), get_script_prefix(),
           request.build_absolute_uri("/"), format_override and request.GET.get(format_override))
    stem = _STEMS.get(key)
    if stem is None:
        before, _, after = reverse(name, kwargs={"pk": _PK_MARK}, request=request).partition(_PK_MARK)
        if len(_STEMS) >= MAX_STEMS:
            _STEMS.clear()
        stem = _STEMS[key] = (before, after)
    return stem


# --- Rendering from rows -----------------------------------------------------------------------

Rows = Sequence[dict[str, Any]]
# All rows' values of one field, from the rows and (for serializer methods) the rows read as instances.
ColumnReader = Callable[[Rows, Sequence[Any]], list[Any]]


class RowRenderer:
    """`type(serializer)(instances, many=True).data`, from `.values()` rows instead of model instances.

    A page of 50 walked through the serializers as instances cost ~10x the queries behind it. Here each
    readable field of the serializer reads the rows as the field itself says: a column (its `source`)
    through the field's own `to_representation`, a SerializerMethodField's method called with each row
    read as the instance, a nested `many=True` model serializer of a reverse foreign key rendered the
    same way from one query for all rows. Any other field raises ImproperlyConfigured instead of
    rendering unlike the detail. Select `columns`, then `render()` the rows; one renderer per request.
    A serializer that declares it reuses the bodies rendered for rows with the same values (RowMemo).
    """

    def __init__(self, serializer: serializers.ModelSerializer, zone: datetime.tzinfo | None = None) -> None:
        plan = _RowPlan.of(serializer)
        # The current time zone (what datetimes are written in), looked up once: a thread-local read each.
        zone = timezone.get_current_timezone() if zone is None else zone
        self.columns = plan.columns
        self._attributes = plan.attributes
        self._names = [name for name, _ in plan.parts]
        self._readers = [part.bind(serializer, zone) for _, part in plan.parts]
        self._nested = [read for read in self._readers if isinstance(read, _NestedReader)]
        self._methods = any(isinstance(part, _MethodPart) for _, part in plan.parts)
        self._memo = plan.memo
        if self._memo is not None:
            self._memo_context = (serializer.row_memo_context(), zone, translation.get_language())
            fresh = {name for name, part in plan.parts if name in self._memo.per_request or
                     isinstance(part, _NestedPart)}
            self._fresh = [(name, read) for name, read in zip(self._names, self._readers, strict=True)
                           if name in fresh]
            self._fresh_methods = any(isinstance(part, _MethodPart) for name, part in plan.parts if name in fresh)
            self._placeholders = dict.fromkeys(fresh)

    def send(self, rows: Rows) -> None:
        """Send the nested lists' reads for these rows now (rows as far as known: the columns the lists
        hang from suffice); `render()` of rows with the same keys reads their answers. In
        `core.db.pipeline.pipelined()` they share a round trip with the reads sent around them."""
        for nested in self._nested:
            nested.send({row[nested.parent_key] for row in rows})

    def send_from(self, keys: KeysFrom) -> None:
        """`send()` for the rows whose ids a statement selects (`core.db.keyed.KeysFrom`, on PostgreSQL),
        sent with it before its answer is known; `render()` must then be given exactly those rows."""
        for nested in self._nested:
            if nested.parent_key == keys.column:
                nested.send(keys)

    def unsend(self) -> None:
        """Drop what `send()` or `send_from()` sent: `render()` reads for its rows anew."""
        for nested in self._nested:
            nested.unsend()

    def render(self, rows: Rows) -> list[dict[str, Any]]:
        if not self._readers:
            return [{} for _ in rows]
        for nested in self._nested:
            nested.load({row[nested.parent_key] for row in rows})
        if self._memo is None:
            return self._rendered(rows, self._names, self._readers, self._methods)
        memo, context = self._memo, self._memo_context
        keys = [memo.key(context, row) for row in rows]
        bodies = [memo.get(key) for key in keys]
        missing = [n for n, body in enumerate(bodies) if body is None]
        if missing:
            fresh = self._rendered([rows[n] for n in missing], self._names, self._readers, self._methods)
            for n, body in zip(missing, fresh, strict=True):
                # Kept without what is rendered per request (the copies below fill it in, in its place).
                bodies[n] = body | self._placeholders
                memo.put(keys[n], bodies[n])
            if len(missing) == len(rows):
                return fresh
        if not self._fresh:
            return [dict(body) for body in bodies]  # a copy per response
        names = [name for name, _ in self._fresh]
        per_request = self._rendered(rows, names, [read for _, read in self._fresh], self._fresh_methods)
        # A copy per response, its members in the serializer's order (a member given again keeps its place).
        return [{**body, **values} for body, values in zip(bodies, per_request, strict=True)]

    def _rendered(self, rows: Rows, names: list[str], readers: list[ColumnReader], methods: bool) -> list[dict]:
        instances = self._attributes.instances(rows) if methods else ()
        # Field by field over all rows, then row by row: the loops run in C, the fields' own code in Python.
        values = [read(rows, instances) for read in readers]
        return [dict(zip(names, row_values, strict=True)) for row_values in zip(*values, strict=True)]


class RowMemo:
    """The bodies a RowRenderer made, by the row's column values and the request's `row_memo_context()`.

    A list page is mostly the rows the previous request showed (a reviewer paging, a client polling);
    rendering a row's twenty fields again cost more than the queries. A serializer that declares
    `row_memo_per_request` (names of fields read per request; nested lists always are) and
    `row_memo_context()` (a hashable of everything else its fields read besides the row: URL stems)
    promises that its other fields are a function of the row's values and that context. The key is
    every column the row holds (JSON as its canonical text), the context, the current time zone and
    language: a row changed in any way — by the gateway, a script or a restore — is another key, so a
    kept body is never stale. At most MAX_ROWS bodies per serializer class, then it starts over (a
    page is at most 200 rows); emptied when a setting changes (the fields read settings when bound).
    The kept bodies are shared: responses get copies, and nothing may change a body in place.
    """

    MAX_ROWS = 2048

    def __init__(self, model: type[models.Model], columns: Sequence[str], per_request: Sequence[str]) -> None:
        self.per_request = frozenset(per_request)
        fields = {field.attname: field for field in model._meta.concrete_fields}
        self._values = operator.itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
        self._json = [n for n, name in enumerate(columns) if isinstance(fields.get(name), models.JSONField)]
        self._bodies: dict[Hashable, dict[str, Any]] = {}
        _MEMOS.add(self)

    def key(self, context: Hashable, row: dict[str, Any]) -> Hashable | None:
        values = self._values(row)
        if self._json:
            values = list(values)
            try:
                for n in self._json:
                    values[n] = orjson.dumps(values[n], option=orjson.OPT_SORT_KEYS)
            except orjson.JSONEncodeError:
                return None  # not JSON orjson writes (a custom decoder's objects): not kept
            values = tuple(values)
        return context, values

    def get(self, key: Hashable | None) -> dict[str, Any] | None:
        try:
            return self._bodies.get(key)  # None for no key, and never kept under it
        except TypeError:
            return None  # a value that cannot be a key (a binary column's memoryview)

    def put(self, key: Hashable | None, body: dict[str, Any]) -> None:
        if key is None:
            return
        if len(self._bodies) >= self.MAX_ROWS:
            self._bodies = {}
        try:
            self._bodies[key] = body
        except TypeError:
            pass

    def clear(self) -> None:
        self._bodies = {}


# Weakly: a memo or the parts of a plan that is gone (one made for a serializer instance, or replaced)
# go with it.
_MEMOS: weakref.WeakSet[RowMemo] = weakref.WeakSet()
_BOUND_PARTS: weakref.WeakSet[_ColumnPart | _NestedPart] = weakref.WeakSet()


def _forget_bodies(**kwargs: Any) -> None:
    # The fields read settings when bound (a datetime's format, USE_TZ): kept bodies and readers go,
    # and the URL stems (reversed with the settings' URLconf and hosts).
    _STEMS.clear()
    for memo in _MEMOS:
        memo.clear()
    for part in _BOUND_PARTS:
        part.forget()


setting_changed.connect(_forget_bodies)


class _RowPlan:
    """What each readable field of a serializer reads from a row: made once per class, bound per request.

    The plan of a class is made from a context-free instance, so it keeps no request. A serializer
    whose fields are not its class's alone (get_fields() overridden, or fields the instance has
    already built or changed) is planned from the instance itself, each time, and keeps no bodies.
    A SerializerMethodField may read any column, so a class with one selects them all, unless the class
    itself (not a parent) names in `row_method_columns` the columns its methods read besides the key.
    """

    _of_class: ClassVar[dict[type, _RowPlan]] = {}
    memo: RowMemo | None = None

    @classmethod
    def of(cls, serializer: serializers.ModelSerializer) -> _RowPlan:
        kind = type(serializer)
        if "fields" in vars(serializer) or kind.get_fields not in _CLASS_FIELDS:
            return cls(serializer)
        if kind not in cls._of_class:
            plan = cls(kind(), method_columns=vars(kind).get("row_method_columns"))
            if "row_memo_per_request" in vars(kind):
                plan.memo = RowMemo(plan.model, plan.columns, kind.row_memo_per_request)
            cls._of_class[kind] = plan
        return cls._of_class[kind]

    def __init__(self, serializer: serializers.ModelSerializer, method_columns: Sequence[str] | None = None) -> None:
        self._name = type(serializer).__name__
        if not isinstance(serializer, serializers.ModelSerializer):
            raise ImproperlyConfigured(f"{self._name} is not a ModelSerializer; it cannot be rendered from rows")
        if type(serializer).to_representation is not serializers.Serializer.to_representation:
            raise ImproperlyConfigured(f"{self._name} overrides to_representation(); it cannot be rendered from rows")
        self.model = serializer.Meta.model
        self.attributes = attributes = _row_attributes(self.model)
        columns = {self.model._meta.pk.attname}
        self.parts: list[tuple[str, _ColumnPart | _MethodPart | _NestedPart]] = []
        for field in serializer._readable_fields:
            part: _ColumnPart | _MethodPart | _NestedPart
            if isinstance(field, serializers.SerializerMethodField):
                part = _MethodPart(field.method_name)
                # A method may read any column, or those its class names.
                readable = attributes.plain | attributes.files.keys()
                columns.update(readable if method_columns is None else method_columns)
            elif isinstance(field, serializers.ListSerializer):
                part = _NestedPart(field, self._relation(field))
                columns.add(part.parent_key)
            else:
                column = self._column(field, attributes)
                part = _ColumnPart(field, column, nullable=column in attributes.nullable)
                columns.add(column)
            self.parts.append((field.field_name, part))
        self.columns = tuple(sorted(columns))

    def _unsupported(self, field: serializers.Field, why: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{self._name}.{field.field_name}: {why}; it cannot be rendered from rows")

    def _column(self, field: serializers.Field, attributes: _RowAttributes) -> str:
        if isinstance(field, (serializers.BaseSerializer, RelatedField, ManyRelatedField)):
            raise self._unsupported(field, f"a {type(field).__name__} is not a column")
        if type(field).get_attribute is not serializers.Field.get_attribute:
            raise self._unsupported(field, f"{type(field).__name__} reads its value its own way")
        if len(field.source_attrs) != 1 or field.source_attrs[0] not in attributes.plain:
            raise self._unsupported(field, f"its source `{field.source}` is not a column of {self.model.__name__}")
        return field.source_attrs[0]

    def _relation(self, field: serializers.ListSerializer) -> ManyToOneRel:
        try:
            relation = self.model._meta.get_field(field.source)
        except FieldDoesNotExist:
            relation = None
        if len(field.source_attrs) != 1 or not (isinstance(relation, ManyToOneRel) and relation.one_to_many):
            raise self._unsupported(field, f"`{field.source}` is not a reverse foreign key of {self.model.__name__}")
        if getattr(getattr(field.child, "Meta", None), "model", None) is not relation.related_model:
            raise self._unsupported(field, f"its items are not {relation.related_model.__name__} model serializers")
        return relation


_CLASS_FIELDS = (serializers.Serializer.get_fields, serializers.ModelSerializer.get_fields)


# DRF's own fields whose `to_representation` reads nothing but the value and the field's own settings
# (not its parent, the context or the request): bound once per time zone and shared by the requests.
_CONTEXT_FREE_FIELDS = frozenset({
    serializers.BooleanField, serializers.CharField, serializers.ChoiceField, serializers.DateTimeField,
    serializers.FloatField, serializers.IntegerField,
})


class _ColumnPart:
    """A field reading one column: the field's own `to_representation`; None, where the column allows it,
    stays None."""

    def __init__(self, field: serializers.Field, column: str, *, nullable: bool) -> None:
        self.field = field
        self.column = column
        self.nullable = nullable
        self.context_free = type(field) in _CONTEXT_FREE_FIELDS
        self._bound: dict[Any, ColumnReader] = {}
        _BOUND_PARTS.add(self)

    def bind(self, serializer: serializers.Serializer, zone: datetime.tzinfo) -> ColumnReader:
        if not self.context_free:
            return self._bind(serializer)
        # A datetime's representation depends on the current time zone (the key); the others on nothing.
        zone = zone if isinstance(self.field, serializers.DateTimeField) else None
        reader = self._bound.get(zone)
        if reader is None:
            reader = self._bound[zone] = self._bind(None)
        return reader

    def forget(self) -> None:
        self._bound = {}

    def _bind(self, serializer: serializers.Serializer | None) -> ColumnReader:
        field = object.__new__(type(self.field))
        vars(field).update(vars(self.field))
        field.parent = serializer  # its context is this request's (none for a shared one)
        if isinstance(field, serializers.DateTimeField) and not hasattr(field, "timezone"):
            # The current time zone, looked up once per request instead of once per value; UTC as the
            # datetime module's own, which astimezone() of a value read from the database skips.
            zone = field.default_timezone()
            field.timezone = datetime.UTC if getattr(zone, "key", None) == "UTC" else zone
        value_of, represent = operator.itemgetter(self.column), field.to_representation
        if isinstance(field, serializers.DateTimeField):
            represent = _utc_iso_representation(field) or represent
        else:
            # `str(value)` / `int(value)` are what these fields' own to_representation return: called as
            # the builtins, a page's hundreds of values skip a Python call each.
            represent = _BUILTIN_REPRESENTATIONS.get(type(field).to_representation, represent)

        if self.nullable:
            def read(rows: Rows, instances: Sequence[Any]) -> list[Any]:
                return [None if value is None else represent(value) for value in map(value_of, rows)]
        else:
            def read(rows: Rows, instances: Sequence[Any]) -> list[Any]:
                return list(map(represent, map(value_of, rows)))

        return read


_BUILTIN_REPRESENTATIONS: dict[Callable[..., Any], Callable[[Any], Any]] = {
    serializers.CharField.to_representation: str,
    serializers.IntegerField.to_representation: int,
}


def _utc_iso_representation(field: serializers.DateTimeField) -> Callable[[Any], Any] | None:
    """DRF's ISO 8601 representation of a datetime in UTC, without its per-value time-zone round trip.

    For a field that writes ISO 8601 in UTC, a value already in `datetime.UTC` (as the database
    backends return them) comes out of `to_representation` as its `isoformat()` with `Z` for `+00:00`;
    anything else still goes through the field.
    """
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    if output_format is None or output_format.lower() != ISO_8601 or field.timezone is not datetime.UTC:
        return None
    fallback, utc, plain = field.to_representation, datetime.UTC, datetime.datetime

    def represent(value: Any) -> Any:
        if value.__class__ is plain and value.tzinfo is utc:
            return value.isoformat()[:-6] + "Z"
        return fallback(value)

    return represent


class _MethodPart:
    """A SerializerMethodField: its method, called with each row read as the instance."""

    def __init__(self, method_name: str) -> None:
        self.method_name = method_name

    def bind(self, serializer: serializers.Serializer, zone: datetime.tzinfo) -> ColumnReader:
        method = getattr(serializer, self.method_name)

        def read(rows: Rows, instances: Sequence[Any]) -> list[Any]:
            return list(map(method, instances))

        return read


class _NestedPart:
    """A nested `many=True` model serializer of a reverse foreign key (what a prefetch would fetch)."""

    def __init__(self, field: serializers.ListSerializer, relation: ManyToOneRel) -> None:
        self.child = field.child
        self.model = relation.related_model
        self.foreign_key = relation.field.attname
        self.parent_key = relation.field.target_field.attname
        plan = _RowPlan.of(self.child)  # an item field that rows cannot render fails here, not at a request
        # Items whose fields are all DRF's context-free column fields (a history entry's) read nothing of
        # the request: their renderer (its readers, its memo's context) is made once per time zone and
        # language, the rest of a memo's key, and shared as those fields are.
        self._shared = all(isinstance(part, _ColumnPart) and part.context_free for _, part in plan.parts)
        self._renderers: dict[tuple[datetime.tzinfo, str | None], RowRenderer] = {}
        _BOUND_PARTS.add(self)

    def bind(self, serializer: serializers.Serializer, zone: datetime.tzinfo) -> _NestedReader:
        key = (zone, translation.get_language()) if self._shared else None
        renderer = self._renderers.get(key) if self._shared else None
        if renderer is None:
            # A new instance as declared (no state of another request's), under this request's serializer.
            child = type(self.child)(*self.child._args, **self.child._kwargs)
            child.parent = None if self._shared else serializer  # a shared one keeps no request
            renderer = RowRenderer(child, zone)
            if self._shared:
                self._renderers[key] = renderer
        return _NestedReader(self, renderer)

    def forget(self) -> None:
        self._renderers = {}


class _NestedReader:
    """The items of a nested list for one render: one query for all rows, then a look-up per row."""

    def __init__(self, part: _NestedPart, renderer: RowRenderer) -> None:
        self.part = part
        self.parent_key = part.parent_key
        self.renderer = renderer
        self.items: dict[Any, list[dict[str, Any]]] = {}
        self._sent: tuple[set[Any] | KeysFrom, Callable[[], list[dict[str, Any]]]] | None = None

    def send(self, keys: set[Any] | KeysFrom) -> None:
        # As the related manager reads them: the default manager, in the model's own ordering.
        foreign_key = self.part.foreign_key
        self._sent = (keys, values_in_later(self.part.model, key=foreign_key, keys=keys,
                                            fields=[foreign_key, *self.renderer.columns]))

    def unsend(self) -> None:
        self._sent = None

    def load(self, keys: set[Any]) -> None:
        # Sent for these keys, or for the rows a statement selects (which are the rows rendered).
        if self._sent is None or not (isinstance(self._sent[0], KeysFrom) or self._sent[0] == keys):
            self.send(keys)
        rows = self._sent[1]()
        self._sent = None
        foreign_key = self.part.foreign_key
        self.items = {}
        for row, body in zip(rows, self.renderer.render(rows), strict=True):
            self.items.setdefault(row[foreign_key], []).append(body)

    def __call__(self, rows: Rows, instances: Sequence[Any]) -> list[list[dict[str, Any]]]:
        items, parent_key = self.items, self.parent_key
        return [items.get(row[parent_key]) or [] for row in rows]


class _RowAttributes:
    """Which attributes of a model's instances its `.values()` rows hold, and the rows read as instances."""

    def __init__(self, model: type[models.Model]) -> None:
        concrete = {field.attname: field for field in model._meta.concrete_fields}
        # Columns whose instance attribute is the stored value itself (not a file or a related object).
        self.plain = {name for name in concrete if type(getattr(model, name)) in _PLAIN_DESCRIPTORS}
        self.nullable = {name for name, field in concrete.items() if field.null}
        self.files = {name: field for name, field in concrete.items() if isinstance(field, models.FileField)}
        # The row is the instance's attribute dict; properties give what the model's descriptors would.
        properties = {name: property(_file_reader(name, field)) for name, field in self.files.items()}
        properties["pk"] = property(_value_reader(model._meta.pk.attname))
        self.row_class = type(f"{model.__name__}Row", (_RowInstance,), {"model": model, **properties})
        clashes = sorted(name for name in self.plain if hasattr(self.row_class, name))
        if clashes:
            raise ImproperlyConfigured(f"{model.__name__} columns {clashes} clash with the row reader's attributes")

    def instances(self, rows: Rows) -> list[_RowInstance]:
        row_class, new = self.row_class, object.__new__
        instances = []
        for row in rows:
            instance = new(row_class)
            instance.__dict__ = row
            instances.append(instance)
        return instances


_PLAIN_DESCRIPTORS = (DeferredAttribute, ForeignKeyDeferredAttribute)


@functools.cache
def _row_attributes(model: type[models.Model]) -> _RowAttributes:
    return _RowAttributes(model)


def _value_reader(name: str) -> Callable[[_RowInstance], Any]:
    def read(instance: _RowInstance) -> Any:
        return instance.__dict__[name]

    return read


def _file_reader(name: str, field: models.FileField) -> Callable[[_RowInstance], Any]:
    def read(instance: _RowInstance) -> Any:
        return field.attr_class(None, field, instance.__dict__[name])

    return read


class _RowInstance:
    """A row read as the model instance, for serializer methods: its columns as attributes."""

    model: type[models.Model]

    def __getattr__(self, name: str) -> Any:
        # Only for what the row does not hold. Not an AttributeError: DRF and getattr() defaults would
        # turn that into a silent None.
        raise ImproperlyConfigured(f"`{name}` of {self.model.__name__} is not a column that rows hold; "
                                   "a serializer method reading it cannot be rendered from rows")


class BatchFailureSerializer(serializers.Serializer):
    image_id = serializers.CharField()
    error = serializers.CharField()
    code = serializers.CharField()


class BatchSkipSerializer(serializers.Serializer):
    image_id = serializers.CharField()
    reason = serializers.CharField()


class BatchCountsSerializer(serializers.Serializer):
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    total = serializers.IntegerField()


class BatchResultSerializer(serializers.Serializer):
    """Per-id outcome of a batch action."""

    successful = serializers.ListField(child=serializers.CharField())
    failed = BatchFailureSerializer(many=True)
    skipped = BatchSkipSerializer(many=True)
    counts = BatchCountsSerializer()


class CountsByStatusSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())


class StatsSerializer(serializers.Serializer):
    """Counts by status of images, generations and products."""

    images = CountsByStatusSerializer()
    generations = CountsByStatusSerializer()
    products = CountsByStatusSerializer()


# --- Input -------------------------------------------------------------------------------------

IMAGE_STATUSES = [choice.value for choice in ImageStatus]
IMAGE_ORDERING = ["created_at", "updated_at", "file_size", "width", "height"]
IMAGE_ORDERINGS = [prefix + name for name in IMAGE_ORDERING for prefix in ("", "-")]


class ImageFilterSerializer(serializers.Serializer):
    """Query parameters of `GET images`."""

    status = choice_field(IMAGE_STATUSES, required=False)
    generation = IdField(required=False)
    search = CleanCharField(max_length=200, required=False)
    ordering = choice_field(
        IMAGE_ORDERINGS,
        required=False,
        help_text="Sort field, `-` for descending; default `-created_at`.",
    )


GENERATION_STATUSES = [choice.value for choice in GenerationStatus]


class GenerationFilterSerializer(serializers.Serializer):
    """Query parameters of `GET generations`."""

    status = choice_field(GENERATION_STATUSES, required=False)


class ImageUploadSerializer(serializers.Serializer):
    """`POST images`: a PNG/JPEG made elsewhere, registered as pending."""

    file = serializers.FileField(allow_empty_file=False)
    prompt = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")

    def validate_prompt(self, value: str) -> str:
        return validate_prompt(value) if value else ""


class ApproveInputSerializer(serializers.Serializer):
    note = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class RejectInputSerializer(serializers.Serializer):
    reason = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class DeleteInputSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)


class BatchInputSerializer(serializers.Serializer):
    """`image_ids` (1–500) and `atomic` (all or nothing)."""

    image_ids = IdListField()
    atomic = StrictBooleanField(default=False)


class BatchApproveInputSerializer(BatchInputSerializer):
    note = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class BatchRejectInputSerializer(BatchInputSerializer):
    reason = CleanCharField(max_length=2000, required=False, allow_blank=True, default="")


class BatchDeleteInputSerializer(BatchInputSerializer):
    force = StrictBooleanField(default=False)
