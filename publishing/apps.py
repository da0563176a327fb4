from django.apps import AppConfig

from core.db.upkeep import counted_register, searched_register


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = "Publishing"

    def ready(self) -> None:
        # Models can only be imported once the app registry is ready, hence here and not at the top.
        from images import relations  # noqa: PLC0415
        from publishing.models import Product  # noqa: PLC0415
        from publishing.selectors import ImageProducts  # noqa: PLC0415

        relations.products_register(ImageProducts())
        # Products by status are counted, and their titles and marketplace ids indexed, by the database
        # (core.db.upkeep).
        counted_register(Product, "status")
        searched_register(Product, "title")
        searched_register(Product, "external_id")
