from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: actors, errors, ids, batch results, the crash-safe worker, roles, checks."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Registering the configuration system checks is an import for its side effect, which Django
        # asks to happen in ready() once the app registry is loaded.
        from core import checks  # noqa: F401, PLC0415
