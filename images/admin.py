from django.contrib import admin

from images.models import Generation, Image, ImageTransition


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "prompt", "backend", "success_count", "failed_count", "created_at"]
    list_filter = ["status", "backend"]
    search_fields = ["prompt"]


class ImageTransitionInline(admin.TabularInline):
    model = ImageTransition
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "actor_label", "via", "note", "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "prompt", "width", "height", "created_at"]
    list_filter = ["status"]
    search_fields = ["prompt"]
    inlines = [ImageTransitionInline]
