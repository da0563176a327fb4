"""Writes for publishing: templates, starting/retrying publication, and the pipeline's outcomes.

Image moves go through `images.services.images_transition` (transition table, history, events);
product rows, outbox events and the pipeline tasks are written in the same transaction, so a
rolled-back request leaves no queued task behind and a committed one always has its task. What the
pipeline itself records as it runs is in `publishing.outcomes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.actors import Actor
from core.batch import BatchNotAppliedError, BatchResult, Outcome, batch_event_data, unique_ids
from core.errors import InvalidInputError, InvalidStateError, NotFoundError
from core.text import clean_text, markup_found
from images.models import Image, ImageStatus
from images.services import images_transition, raise_for_single
from publishing.models import (
    DESCRIPTION_MAX,
    PRICE_MAX_CENTS,
    TITLE_MAX,
    Platform,
    Product,
    ProductStatus,
    ProductTemplate,
)
from publishing.outcomes import product_transition, products_created, products_record
from publishing.tasks import product_pipeline
from webhooks.models import EventType
from webhooks.services import event_record

TEMPLATE_FIELDS = frozenset(
    f.name
    for f in ProductTemplate._meta.get_fields()
    if f.concrete and f.name not in {"id", "created_at", "updated_at"}
)
PRINTIFY_REQUIRED = ("blueprint_id", "print_provider_id", "variant_ids")
_TEXT_FIELDS = frozenset({"name", "position", "title_template", "description_template"})
# Texts that reach the listing (with `tags`): the markup rules of core.text apply to them.
_LISTING_TEXT_FIELDS = frozenset({"title_template", "description_template"})
_WHOLE_NUMBER_FIELDS = frozenset({"blueprint_id", "print_provider_id", "price_cents"})
_NULLABLE_FIELDS = frozenset({"blueprint_id", "print_provider_id"})
_NUMBER_FIELDS = frozenset({"x", "y", "scale", "angle"})


# --- Templates -----------------------------------------------------------------------------------

def render_listing(*, template: ProductTemplate, prompt: str, style: str = "") -> tuple[str, str]:
    """Title and description from the template's `{prompt}` / `{style}` placeholders."""

    def fill(text: str) -> str:
        # Plain replacement, not str.format: a prompt or template with other braces must not break it.
        return text.replace("{prompt}", prompt).replace("{style}", style).strip()

    title = " ".join(fill(template.title_template).split()) or prompt.strip() or "Design"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title, fill(template.description_template)


def template_resolve(*, template_id: str | None) -> ProductTemplate:
    """The named template, or the (first) default one; `InvalidInputError` on `template` otherwise."""
    return templates_resolve(template_id=template_id)[0]


def templates_resolve(
    *, template_id: str | None = None, template_ids: Sequence[str] | None = None
) -> list[ProductTemplate]:
    """The templates to publish with: the listed ones, the named one, or else every default one.

    `InvalidInputError` on `templates` (or `template`) naming an unknown or incomplete template, or
    when none is named and none is default.
    """
    if template_ids:
        wanted = list(dict.fromkeys(template_ids))
        found = {t.id: t for t in ProductTemplate.objects.filter(id__in=wanted)}
        unknown = [template_id for template_id in wanted if template_id not in found]
        if unknown:
            raise InvalidInputError("Unknown product template",
                                    fields={"templates": [f"No template {', '.join(unknown)}"]})
        templates = [found[template_id] for template_id in wanted]
    elif template_id:
        template = ProductTemplate.objects.filter(id=template_id).first()
        if template is None:
            raise InvalidInputError("Unknown product template", fields={"template": [f"No template {template_id}"]})
        templates = [template]
    else:
        templates = list(ProductTemplate.objects.filter(is_default=True).order_by("name", "id"))
        if not templates:
            raise InvalidInputError(
                "No template given and no default template",
                fields={"template": ["Give a template id or mark a template as default"]},
            )
    for template in templates:
        _template_check_publishable(template)
    return templates


def _template_check_publishable(template: ProductTemplate) -> None:
    # Templates are validated when written; this guards rows written before the rules (or by hand).
    if template.platform != Platform.PRINTIFY:
        return
    missing = [name for name in PRINTIFY_REQUIRED if not getattr(template, name)]
    if missing:
        raise InvalidInputError(
            f"Template {template.name} is incomplete for Printify",
            fields={"template": [f"Template {template.id} has no {', '.join(missing)}"]},
        )


def product_template_validate(data: dict[str, Any], *, instance: ProductTemplate | None = None) -> dict[str, Any]:
    """The given template fields, cleaned; `InvalidInputError` with per-field messages if the result is invalid.

    The template that would result — `instance` (or a new template's defaults) with `data` applied — is
    checked as a whole: every field's rules (declared on the model), and a Printify template's blueprint,
    provider and variants. Texts are trimmed and cleaned of control characters, variant ids deduplicated.
    The API, the admin form and the commands all refuse with these errors.
    """
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in data if name not in TEMPLATE_FIELDS}
    given: dict[str, Any] = {}
    for name, value in data.items():
        if name not in TEMPLATE_FIELDS:
            continue
        try:
            given[name] = _template_value(name, value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if instance is None:
        candidate = ProductTemplate()
    else:
        candidate = ProductTemplate(**{name: getattr(instance, name) for name in TEMPLATE_FIELDS})
    for name, value in given.items():
        setattr(candidate, name, value)
    try:
        candidate.clean_fields(exclude=set(errors) | {"id", "created_at", "updated_at"})
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors.setdefault(name, []).extend(messages)
    if candidate.platform == Platform.PRINTIFY:
        for name in PRINTIFY_REQUIRED:
            if name not in errors and not getattr(candidate, name):
                errors[name] = ["Required for a Printify template."]
    if errors:
        raise InvalidInputError("Invalid product template", fields=errors)
    cleaned = {name: getattr(candidate, name) for name in given}
    if "variant_ids" in cleaned:
        cleaned["variant_ids"] = list(dict.fromkeys(cleaned["variant_ids"]))
    return cleaned


def _template_value(name: str, value: Any) -> Any:
    """One field's value in the type it is stored as; ValidationError when it is not of that type."""
    if name in _TEXT_FIELDS:
        if not isinstance(value, str):
            raise ValidationError("Enter a text.")
        if name in _LISTING_TEXT_FIELDS:
            _refuse_listing_markup(value)
        return clean_text(value)
    if name == "platform":
        if value not in Platform.values:
            raise ValidationError(f'"{value}" is not a valid choice. Allowed: {", ".join(Platform.values)}.')
        return value
    if name in _WHOLE_NUMBER_FIELDS:
        if value is None and name in _NULLABLE_FIELDS:
            return None
        if type(value) is not int:
            raise ValidationError("Enter a whole number.")
        return value
    if name in _NUMBER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError("Enter a number.")
        return float(value)
    if name == "tags":
        if not isinstance(value, list | tuple):
            raise ValidationError("Enter a list of tags.")
        for tag in value:
            if isinstance(tag, str):
                _refuse_listing_markup(tag)
        return [clean_text(tag) if isinstance(tag, str) else tag for tag in value]
    if name == "variant_prices":
        if not isinstance(value, dict):
            raise ValidationError("Enter an object of variant id → price in cents.")
        return {str(key): cents for key, cents in value.items()}
    if name == "variant_ids":
        if not isinstance(value, list | tuple):
            raise ValidationError("Enter a list of variant ids.")
        return list(value)
    if name == "is_default" and not isinstance(value, bool):
        raise ValidationError("Enter true or false.")
    return value


def _refuse_listing_markup(text: str) -> None:
    """Listing texts go to Printify and listing.json as they are: markup in them is refused (core.text rules)."""
    if found := markup_found(text):
        raise ValidationError(f"Markup is not allowed ({found} found).")


@transaction.atomic
def product_template_create(*, data: dict[str, Any], actor: Actor) -> ProductTemplate:
    """Create a valid template (see `product_template_validate`); several templates may be default."""
    template = ProductTemplate(**product_template_validate(data))
    template.save()
    return template


@transaction.atomic
def product_template_update(*, template_id: str, data: dict[str, Any], actor: Actor) -> ProductTemplate:
    """Change a template's fields, refused unless the changed template is valid as a whole.

    Products already started keep the listing they were given.
    """
    template = ProductTemplate.objects.select_for_update().filter(id=template_id).first()
    if template is None:
        raise NotFoundError(f"Product template {template_id} not found")
    for key, value in product_template_validate(data, instance=template).items():
        setattr(template, key, value)
    template.save()
    return template


def product_template_delete(*, template_id: str, actor: Actor) -> None:
    """Delete a template; refused while a product using it is still being published."""
    if not ProductTemplate.objects.filter(id=template_id).exists():
        raise NotFoundError(f"Product template {template_id} not found")
    product_templates_delete(template_ids=[template_id], actor=actor)


@transaction.atomic
def product_templates_delete(*, template_ids: Iterable[str], actor: Actor) -> int:
    """Delete templates all together or not at all: refused (nothing deleted) while any is in use by a
    product being published. Returns how many were deleted."""
    ids = list(dict.fromkeys(template_ids))
    templates = ProductTemplate.objects.select_for_update().filter(id__in=ids)
    locked = list(templates.values_list("id", flat=True))
    busy = sorted(set(
        Product.objects.filter(template_id__in=locked)
        .exclude(status__in=[ProductStatus.PUBLISHED, ProductStatus.FAILED])
        .values_list("template_id", flat=True)
    ))
    if busy:
        names = ", ".join(busy)
        raise InvalidStateError(
            f"Template {names} is in use by products being published; no template was deleted"
            if len(busy) == 1 else
            f"Templates {names} are in use by products being published; no template was deleted",
            details={"template_ids": busy},
        )
    ProductTemplate.objects.filter(id__in=locked).delete()
    return len(locked)


# --- Starting publication ------------------------------------------------------------------------

# An image may get products from these statuses; one already publishing keeps its status.
PUBLISHABLE = frozenset({ImageStatus.APPROVED, ImageStatus.FAILED, ImageStatus.PUBLISHED, ImageStatus.PUBLISHING})


def images_publish(
    *,
    image_ids: Iterable[str],
    actor: Actor,
    template_id: str | None = None,
    template_ids: Sequence[str] | None = None,
    atomic: bool = False,
    batch_action: str | None = None,
) -> BatchResult:
    """Start publishing approved, failed or published images with templates; other images are reported.

    One product per image and template, skipping a template the image is already live on (an image
    live on every one of them is skipped); a failed product is queued again, keeping its external ids.
    """
    templates = templates_resolve(template_id=template_id, template_ids=template_ids)
    result, _ = _publish(image_ids=image_ids, templates=templates, actor=actor, atomic=atomic,
                         batch_action=batch_action)
    return result


def image_publish_products(
    *,
    image_id: str,
    actor: Actor,
    template_id: str | None = None,
    template_ids: Sequence[str] | None = None,
    title: str | None = None,
    description: str | None = None,
    price_cents: int | None = None,
) -> list[Product]:
    """Start publishing one image with templates (see `images_publish`); the products started.

    Title, description and price override each template's. `InvalidStateError` when the image cannot
    be published or is already live on every template.
    """
    overrides = _overrides(title=title, description=description, price_cents=price_cents)
    templates = templates_resolve(template_id=template_id, template_ids=template_ids)
    result, products = _publish(image_ids=[image_id], templates=templates, actor=actor, overrides=overrides)
    raise_for_single(result, image_id)
    return products


def image_publish(
    *,
    image_id: str,
    actor: Actor,
    template_id: str | None = None,
    title: str | None = None,
    description: str | None = None,
    price_cents: int | None = None,
) -> Product:
    """Start publishing one image with one template (or the first default one); the product."""
    products = image_publish_products(image_id=image_id, actor=actor, template_id=template_id, title=title,
                                      description=description, price_cents=price_cents)
    return products[0]


def _publish(
    *,
    image_ids: Iterable[str],
    templates: list[ProductTemplate],
    actor: Actor,
    atomic: bool = False,
    batch_action: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[BatchResult, list[Product]]:
    """Move the images that get a product to publishing and start their products, in one transaction."""
    ids = unique_ids(image_ids)
    note = "template " + ", ".join(t.name for t in templates)
    with transaction.atomic():
        statuses = dict(Image.objects.select_for_update().filter(id__in=ids).values_list("id", "status"))
        live = _live_templates(ids, templates)
        wanted = {t.id for t in templates}
        idle = {i for i in ids if statuses.get(i) in PUBLISHABLE and wanted <= live.get(i, set())}
        moving = [i for i in ids if i not in idle and statuses.get(i) != ImageStatus.PUBLISHING]
        moved = images_transition(image_ids=moving, to_status=ImageStatus.PUBLISHING, actor=actor, note=note)
        started = set(moved.successful)
        result = BatchResult(failed=moved.failed, skipped=moved.skipped)
        for image_id in ids:
            if image_id in idle:
                result.skip(image_id, Outcome.HAS_LIVE_PRODUCT,
                            "already has a product on " + ", ".join(t.name for t in templates))
            elif image_id in started or statuses.get(image_id) == ImageStatus.PUBLISHING:
                result.successful.append(image_id)
        if atomic and not result.complete:
            raise BatchNotAppliedError(result)
        products = _products_start(image_ids=result.successful, templates=templates, actor=actor,
                                   overrides=overrides)
        if batch_action:
            event_record(event_type=EventType.BATCH_COMPLETED, data=batch_event_data(batch_action, result))
    return result, products


def _live_templates(image_ids: Sequence[str], templates: list[ProductTemplate]) -> dict[str, set[str]]:
    """Image id → the templates (of these) it has a product on that has not failed; the rows locked."""
    rows = (Product.objects.select_for_update().filter(image_id__in=image_ids, template__in=templates)
            .exclude(status=ProductStatus.FAILED).values_list("image_id", "template_id"))
    live: dict[str, set[str]] = {}
    for image_id, template_id in rows:
        live.setdefault(image_id, set()).add(template_id)
    return live


def _overrides(*, title: str | None, description: str | None, price_cents: int | None) -> dict[str, Any]:
    """The publish options, checked: the one place their limits are applied (the API passes them through)."""
    fields: dict[str, list[str]] = {}
    overrides: dict[str, Any] = {}
    if title is not None:
        if not isinstance(title, str):
            fields["title"] = ["Enter a text."]
        else:
            title = " ".join(clean_text(title).split())
            if not title or len(title) > TITLE_MAX:
                fields["title"] = [f"Must be 1–{TITLE_MAX} characters"]
            elif found := markup_found(title):
                fields["title"] = [f"Markup is not allowed ({found} found)."]
            overrides["title"] = title
    if description is not None:
        if not isinstance(description, str):
            fields["description"] = ["Enter a text."]
        else:
            description = clean_text(description)
            if len(description) > DESCRIPTION_MAX:
                fields["description"] = [f"At most {DESCRIPTION_MAX} characters"]
            elif found := markup_found(description):
                fields["description"] = [f"Markup is not allowed ({found} found)."]
            overrides["description"] = description
    if price_cents is not None:
        if isinstance(price_cents, bool) or not isinstance(price_cents, int) or not 1 <= price_cents <= PRICE_MAX_CENTS:
            fields["price_cents"] = [f"Must be a whole number of cents, 1–{PRICE_MAX_CENTS}"]
        overrides["price_cents"] = price_cents
    if fields:
        raise InvalidInputError("Invalid publish options", fields=fields)
    return overrides


def _products_start(
    *, image_ids: list[str], templates: list[ProductTemplate], actor: Actor, overrides: dict[str, Any] | None = None
) -> list[Product]:
    """Create or reuse (failed → queued) a product per image and template, skipping templates the image is
    live on; write their history rows and enqueue their pipelines. Set-wise: the same queries for 1 or 500
    images (plus one INSERT per task)."""
    if not image_ids:
        return []
    images = Image.objects.filter(id__in=image_ids).select_related("generation").only(
        "id", "prompt", "generation__style"
    )
    live: set[tuple[str, str]] = set()
    failed: dict[tuple[str, str], Product] = {}
    rows = Product.objects.select_for_update().filter(image_id__in=image_ids, template__in=templates)
    for product in rows.order_by("created_at", "id"):
        key = (product.image_id, product.template_id)
        if product.status == ProductStatus.FAILED:
            failed[key] = product  # the newest failed one is queued again
        else:
            live.add(key)
    new, reused = [], []
    previous: dict[str, str] = {}
    for image in images:
        style = image.generation.style if image.generation_id else ""
        for template in templates:
            key = (image.id, template.id)
            if key in live:
                continue
            shop_id = str(settings.PRINTIFY_SHOP_ID) if template.platform == Platform.PRINTIFY else ""
            title, description = render_listing(template=template, prompt=image.prompt, style=style)
            values = {
                "template": template,
                "platform": template.platform,
                "status": ProductStatus.QUEUED,
                "title": title,
                "description": description,
                "price_cents": template.price_cents,
                "variant_prices": {} if "price_cents" in (overrides or {}) else dict(template.variant_prices),
                "tags": list(template.tags),
                "shop_id": shop_id,
                "error": "",
                **(overrides or {}),
            }
            product = failed.get(key)
            if product is None:
                new.append(Product(image_id=image.id, **values))
                continue
            previous[product.id] = product.status
            # A retry continues where the last run stopped, unless what it made no longer fits.
            if product.platform != template.platform or product.shop_id != shop_id:
                product.external_id = product.external_url = ""
                product.create_requested_at = None
                product.mockups = []
            for name, value in values.items():
                setattr(product, name, value)
            product.updated_at = timezone.now()  # bulk_update does not apply auto_now
            reused.append(product)
    Product.objects.bulk_create(new)
    products = new + reused
    for product in products:
        # One INSERT per task: django_tasks has no bulk enqueue. Each product gets its own task so
        # that its retries and pacing are independent of the rest of the batch.
        product.task_id = str(product_pipeline.enqueue(product_id=product.id).id)
    Product.objects.bulk_update(
        products,
        ["template", "platform", "status", "title", "description", "price_cents", "variant_prices", "tags", "shop_id",
         "error", "external_id", "external_url", "create_requested_at", "mockups", "task_id", "updated_at"],
    )
    for template in templates:
        note = f"template {template.name}"
        products_created([p for p in new if p.template_id == template.id], actor=actor, note=note)
        products_record([(p.id, previous[p.id]) for p in reused if p.template_id == template.id],
                        to_status=ProductStatus.QUEUED, actor=actor, note=note)
    order = {image_id: n for n, image_id in enumerate(image_ids)}
    rank = {template.id: n for n, template in enumerate(templates)}
    return sorted(products, key=lambda p: (order[p.image_id], rank[p.template_id]))


def product_retry(*, product_id: str, actor: Actor) -> Product:
    """Run a failed product's pipeline again; it continues from the last step that succeeded."""
    with transaction.atomic():
        product = Product.objects.select_for_update().filter(id=product_id).first()
        if product is None:
            raise NotFoundError(f"Product {product_id} not found", details={"product_id": product_id})
        if product.status != ProductStatus.FAILED:
            raise InvalidStateError(
                f"Product {product_id} is {product.status}; only a failed product can be retried",
                details={"product_id": product_id, "status": product.status},
            )
        live = Product.objects.filter(image_id=product.image_id, template_id=product.template_id).exclude(
            status=ProductStatus.FAILED)
        if product.template_id and live.exists():
            raise InvalidStateError(
                f"Image {product.image_id} already has a live product on this template",
                details={"product_id": product_id, "image_id": product.image_id},
            )
        image_status = Image.objects.select_for_update().filter(id=product.image_id).values_list(
            "status", flat=True).first()
        if image_status != ImageStatus.PUBLISHING:
            result = images_transition(
                image_ids=[product.image_id], to_status=ImageStatus.PUBLISHING, actor=actor,
                note=f"retry {product.id}",
            )
            if not result.successful:
                reason = (result.skipped or result.failed)[0].get("reason", "cannot publish")
                raise InvalidStateError(f"Image {product.image_id}: {reason}",
                                        details={"image_id": product.image_id})
        task_id = str(product_pipeline.enqueue(product_id=product.id).id)
        product_transition(product=product, to_status=ProductStatus.QUEUED, actor=actor, note="retry", error="",
                           task_id=task_id)
    return product
