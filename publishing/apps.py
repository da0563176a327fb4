from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = "Publishing"

    def ready(self) -> None:
        # Models can only be imported once the app registry is ready, hence here and not at the top.
        from images import relations  # noqa: PLC0415
        from publishing.selectors import ImageProducts  # noqa: PLC0415

        relations.products_register(ImageProducts())
