"""Products (browsable, retried through the publishing service) and product templates (configuration)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime
from django.views.decorators.http import require_POST

from core.admin_tools import (
    REVIEW_CSS,
    CappedCountAdmin,
    StatusHistoryInline,
    admin_actor,
    admin_url,
    report_result,
    status_badge,
)
from core.errors import DomainError, InvalidInputError
from images.admin import ImageAdmin, thumbnail_html
from images.models import Image
from publishing import catalog
from publishing.catalog import fit_report
from publishing.forms import CatalogTemplateForm, ProductTemplateForm, PublishForm
from publishing.models import Product, ProductTemplate, ProductTransition
from publishing.selectors import product_counts, products_search
from publishing.services import (
    PUBLISHABLE,
    image_publish_products,
    images_publish,
    product_retry,
    product_template_create,
    product_template_delete,
    product_template_update,
    product_templates_delete,
)


@admin.register(ProductTemplate)
class ProductTemplateAdmin(admin.ModelAdmin):
    """What a design becomes: blueprint, provider, variants, price, placement and listing text."""

    form = ProductTemplateForm
    list_display = ["name", "platform", "blueprint_id", "print_provider_id", "variant_count", "price_column",
                    "is_default"]
    list_filter = ["platform", "is_default"]
    search_fields = ["name", "=id"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["id", "name", "platform", "is_default"]}),
        ("Printify product", {"fields": ["blueprint_id", "print_provider_id", "variant_ids", "price_cents",
                                         "variant_prices"]}),
        ("Placement", {"fields": ["position", "x", "y", "scale", "angle"]}),
        ("Listing", {"fields": ["title_template", "description_template", "tags"],
                     "description": "Placeholders: {prompt}, {style}."}),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: ProductTemplate | None = None) -> list:
        if obj is not None:
            return self.fieldsets
        # A new template has no id or record yet (the id shown would not be the one it gets).
        first, *rest = self.fieldsets
        first = (first[0], {**first[1], "fields": [f for f in first[1]["fields"] if f != "id"]})
        return [first, *[fieldset for fieldset in rest if fieldset[0] != "Record"]]

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(self.catalog_view)
        return [path("catalog/", view, name="publishing_producttemplate_catalog"), *super().get_urls()]

    def catalog_view(self, request: HttpRequest) -> HttpResponse:
        """Build a template from Printify's catalog: search blueprints by name, pick a print provider, tick
        variants by colour and size, price per size. The catalog's pages come from the cache (`catalog`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        context: dict[str, Any] = {**self.admin_site.each_context(request), "opts": self.model._meta,
                                   "title": "Build a template from Printify's catalog", "media": self.media}
        search = request.GET.get("search", "").strip()[:100]
        context["search"] = search
        try:
            blueprint_id = _int_param(request.GET.get("blueprint"))
            provider_id = _int_param(request.GET.get("provider"))
            if blueprint_id is None:
                context["blueprints"] = catalog.blueprints(search=search)[:100] if search else []
                return TemplateResponse(request, "admin/publishing/producttemplate/catalog.html", context)
            blueprint = next((b for b in catalog.blueprints() if b["id"] == blueprint_id), None)
            providers = catalog.print_providers(blueprint_id=blueprint_id) if blueprint else []
            provider = next((p for p in providers if p["id"] == provider_id), None)
            context.update(blueprint=blueprint, providers=providers, provider=provider)
            if blueprint is None:
                context["error"] = f"No blueprint {blueprint_id} in Printify's catalog."
            if blueprint is None or provider is None:
                return TemplateResponse(request, "admin/publishing/producttemplate/catalog.html", context)
            variants = catalog.variants(blueprint_id=blueprint_id, print_provider_id=provider_id)
        except DomainError as exc:
            context["error"] = f"Printify's catalog could not be read: {exc.message}"
            return TemplateResponse(request, "admin/publishing/producttemplate/catalog.html", context)
        form = CatalogTemplateForm(request.POST if request.method == "POST" else None, variants=variants,
                                   initial={"name": f"{blueprint['title']} · {provider['title']}"[:200]})
        if form.is_valid():
            data = {**form.template_data(), "blueprint_id": blueprint_id, "print_provider_id": provider_id}
            try:
                template = product_template_create(data=data, actor=admin_actor(request))
            except InvalidInputError as exc:
                for name, errors in exc.fields.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            else:
                self.message_user(request, f"Template {template.name} saved from the catalog.", messages.SUCCESS)
                return redirect(admin_url("publishing_producttemplate_change", template.pk))
        context["form"] = form
        return TemplateResponse(request, "admin/publishing/producttemplate/catalog.html", context)

    def save_model(self, request: HttpRequest, obj: ProductTemplate, form: Any, change: bool) -> None:
        # Through the services, which keep a single default template.
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if change:
            product_template_update(template_id=obj.pk, data=data, actor=admin_actor(request))
        else:
            created = product_template_create(data=form.cleaned_data, actor=admin_actor(request))
            obj.pk = created.pk
            obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: ProductTemplate) -> None:
        try:
            product_template_delete(template_id=obj.pk, actor=admin_actor(request))
        except DomainError as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # All or none: a refused template leaves the others in place too.
        try:
            product_templates_delete(template_ids=list(queryset.values_list("pk", flat=True)),
                                     actor=admin_actor(request))
        except DomainError as exc:
            raise PermissionDenied(exc.message) from exc

    @admin.display(description="Variants")
    def variant_count(self, obj: ProductTemplate) -> int:
        return len(obj.variant_ids or [])

    @admin.display(description="Price", ordering="price_cents")
    def price_column(self, obj: ProductTemplate) -> str:
        return f"{obj.price_cents / 100:.2f}"


def _int_param(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


class ProductTransitionInline(StatusHistoryInline):
    model = ProductTransition


@admin.register(Product)
class ProductAdmin(CappedCountAdmin, admin.ModelAdmin):
    """Published (or publishing) designs; read-only, since only the pipeline moves a product on."""

    # Few, compact columns: the list must fit a laptop screen beside its filters.
    list_display = ["thumbnail_column", "image_column", "status_column", "template_column", "external_link",
                    "attempts", "published_column"]
    list_filter = ["status", "platform", "created_at"]
    list_select_related = ["image", "template"]
    search_fields = ["=id", "=image__id", "external_id", "title", "image__prompt"]
    list_per_page = 50
    actions = ["retry_products"]
    inlines = [ProductTransitionInline]
    readonly_fields = fields = [
        "id", "image_link", "status_column", "platform", "template", "title", "description", "price_cents",
        "variant_prices", "external_upload_id", "external_id", "external_link", "mockups_column", "error",
        "attempts", "created_at", "updated_at", "published_at",
    ]

    class Media:
        css = REVIEW_CSS

    def status_counts(self, request: HttpRequest) -> dict[str, int]:
        return product_counts()

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Each word (or "quoted phrase") in the title, marketplace id or prompt, or the exact product or image id."""
        return products_search(queryset, search_term), False

    @admin.display(description="Preview")
    def thumbnail_column(self, obj: Product) -> str:
        return thumbnail_html(obj.image, "pod-thumb-small")

    @admin.display(description="Image", ordering="image__created_at")
    def image_link(self, obj: Product) -> str:
        url = admin_url("images_image_change", obj.image_id)
        return format_html('<a href="{}">{}</a>', url, obj.image_id)

    @admin.display(description="Design", ordering="image__created_at")
    def image_column(self, obj: Product) -> str:
        # The prompt says which design it is; the opaque image id is in the tooltip and on the product page.
        prompt = obj.image.prompt if len(obj.image.prompt) <= 80 else obj.image.prompt[:79] + "…"
        url = admin_url("images_image_change", obj.image_id)
        return format_html('<a href="{}" title="{}">{}</a>', url, obj.image_id, prompt or obj.image_id)

    @admin.display(description="Template", ordering="template__name")
    def template_column(self, obj: Product) -> str:
        return obj.template.name if obj.template else "—"

    @admin.display(description="Status", ordering="status")
    def status_column(self, obj: Product) -> str:
        return status_badge(obj.status)

    @admin.display(description="Published", ordering="published_at")
    def published_column(self, obj: Product) -> str:
        if obj.published_at is None:
            return "—"
        return format_html('<span class="pod-created">{}</span>', date_format(localtime(obj.published_at), "M j, H:i"))

    @admin.display(description="Mockups")
    def mockups_column(self, obj: Product) -> str:
        return mockups_html(obj.mockups, limit=24) or "—"

    @admin.display(description="On the platform")
    def external_link(self, obj: Product) -> str:
        if obj.external_url:
            return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', obj.external_url,
                               obj.external_id or obj.external_url)
        return obj.external_id or "—"

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        return super().changelist_view(request, {"title": "Products", **(extra_context or {})})

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Products are made by publishing an approved image, never by hand.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        # A product may exist on Printify; deleting our row would lose the link to it.
        return False

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("publishing.publish_image")

    @admin.action(description="Retry selected failed products", permissions=["publish"])
    def retry_products(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried: list[str] = []
        for product_id in queryset.values_list("pk", flat=True):
            try:
                product_retry(product_id=product_id, actor=admin_actor(request))
            except DomainError as exc:
                self.message_user(request, f"Not retried ({exc.message}): {product_id}", messages.WARNING)
            else:
                retried.append(product_id)
        if retried:
            self.message_user(request, f"Retrying {len(retried)} products: {', '.join(retried)}", messages.SUCCESS)


def mockups_html(mockups: list[dict[str, Any]], *, limit: int = 6) -> str:
    """Printify's mockups of a product as small pictures, the default one first."""
    ordered = sorted(mockups, key=lambda m: not m.get("is_default"))[:limit]
    return format_html_join(
        "", '<a href="{0}" target="_blank" rel="noopener"><img src="{0}" alt="{1} mockup" class="pod-mockup" '
        'loading="lazy" width="96" height="96"></a>',
        ((m["src"], m.get("position", "")) for m in ordered),
    )


def product_summary_html(product: Product) -> str:
    """One product on its image's page: id, template, status, link on the platform and mockups."""
    url = admin_url("publishing_product_change", product.pk)
    link = ""
    if product.external_url:
        link = format_html(' · <a href="{}" target="_blank" rel="noopener">on {}</a>', product.external_url,
                           product.platform)
    template = product.template.name if product.template else "template deleted"
    return format_html('<a href="{}">{}</a> {} {}{}<div class="pod-mockups">{}</div>', url, product.pk, template,
                       status_badge(product.status), link, mockups_html(product.mockups))


class PublishingImageAdmin(ImageAdmin):
    """The review queue with what publishing adds: the publish action and each image's product."""

    actions = ["approve_images", "reject_images", "publish_images", "reset_images", "delete_images"]
    fieldsets = [
        (None, {"fields": ["preview", "status_column", "product_link", "print_fit", "prompt", "generation_column"]}),
        *ImageAdmin.fieldsets[1:],
    ]
    readonly_fields = [*ImageAdmin.readonly_fields, "product_link", "print_fit"]
    change_form_template = "admin/publishing/image/change_form.html"

    def get_urls(self) -> list:
        view = self.admin_site.admin_view(require_POST(self.publish_view))
        return [path("<path:object_id>/publish/", view, name="images_image_publish"), *super().get_urls()]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        extra = dict(extra_context or {})
        status = Image.objects.filter(pk=unquote(object_id)).values_list("status", flat=True).first()
        if self.has_publish_permission(request) and status in PUBLISHABLE:
            extra["publish_form"] = PublishForm()
        return super().change_view(request, object_id, form_url, extra)

    def publish_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Publish this image with the ticked templates: a product each, templates it is live on skipped."""
        if not self.has_publish_permission(request):
            raise PermissionDenied
        object_id = unquote(object_id)
        page = admin_url("images_image_change", object_id)
        form = PublishForm(request.POST)
        if not form.is_valid():
            problems = "; ".join(str(m) for messages_ in form.errors.values() for m in messages_)
            self.message_user(request, f"Nothing was published: {problems}", messages.ERROR)
            return redirect(page)
        try:
            products = image_publish_products(image_id=object_id, actor=admin_actor(request),
                                              template_ids=[t.pk for t in form.cleaned_data["templates"]])
        except DomainError as exc:
            self.message_user(request, f"Nothing was published: {exc.message}", messages.ERROR)
        else:
            names = ", ".join(p.template.name for p in products if p.template)
            self.message_user(request, f"Publishing {len(products)} product(s): {names}", messages.SUCCESS)
        return redirect(page)

    @admin.display(description="Print fit")
    def print_fit(self, obj: Image) -> str:
        """Warnings for the templates' print areas this design is too small for (at 300 DPI)."""
        templates = list(ProductTemplate.objects.filter(platform="printify").order_by("-is_default", "name")[:20])
        warnings, known = fit_report(width=obj.width or 0, height=obj.height or 0, templates=templates)
        if not warnings:
            if not known:
                return "Print areas unknown (Printify's catalog could not be read)" if templates else "—"
            return f"Fits the print area of {known} Printify template(s)"
        return format_html_join("", '<div class="pod-warning">⚠ {}</div>', ((w,) for w in warnings))

    @admin.display(description="Products")
    def product_link(self, obj: Image) -> str:
        products = list(Product.objects.filter(image_id=obj.pk).select_related("template").order_by("-created_at"))
        if not products:
            return "—"
        return format_html_join("", '<div class="pod-product">{}</div>', ((product_summary_html(p),) for p in products))

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("publishing.publish_image")

    @admin.action(description="Publish selected images…", permissions=["publish"])
    def publish_images(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = list(queryset.values_list("pk", flat=True))
        form = PublishForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            templates = form.cleaned_data["templates"]
            try:
                result = images_publish(
                    image_ids=ids, actor=admin_actor(request), template_ids=[t.pk for t in templates],
                    batch_action="publish",
                )
            except InvalidInputError as exc:
                for messages_ in exc.fields.values():
                    for message in messages_:
                        form.add_error("templates", message)
                if not exc.fields:
                    form.add_error(None, exc.message)
            except DomainError as exc:
                self.message_user(request, f"Nothing was published: {exc.message}", messages.ERROR)
                return None
            else:
                report_result(self, request, result, "Publishing")
                return None
        return self.intermediate_page(request, queryset, form, action="publish_images", title="Publish images",
                                      submit="Publish", intro="Publish these images as products, one per ticked "
                                      "template (a template an image is already live on is skipped). Publishing runs "
                                      "in the background; follow it under Products.")


# The images app registers the plain review queue; publishing replaces it with the extended one.
admin.site.unregister(Image)
admin.site.register(Image, PublishingImageAdmin)
