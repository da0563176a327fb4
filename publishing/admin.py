from django.contrib import admin

from publishing.models import Product, ProductTemplate


@admin.register(ProductTemplate)
class ProductTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "platform", "blueprint_id", "print_provider_id", "price_cents", "is_default"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["id", "image", "platform", "status", "external_id", "created_at"]
    list_filter = ["status", "platform"]
