from django.apps import AppConfig
from django.db.models.signals import post_migrate

from core.db.upkeep import upkeep_ensure


class CoreConfig(AppConfig):
    """What every app shares: actors, errors, ids, batch results, the crash-safe worker, roles, checks."""

    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Registering the configuration system checks is an import for its side effect, which Django
        # asks to happen in ready() once the app registry is loaded.
        from core import checks  # noqa: F401, PLC0415
        from core.metrics import StatsdGaugeReporter  # noqa: PLC0415
        from core.worker import worker_companion_register  # noqa: PLC0415

        # With STATSD_HOST set, each task worker also pushes the gauges to StatsD.
        worker_companion_register(StatsdGaugeReporter)

        post_migrate.connect(_upkeep_after_migrate, sender=self)


def _upkeep_after_migrate(*, using: str = "default", **kwargs) -> None:
    # Django's SQLite schema editor rebuilds a table for most field changes, dropping its triggers:
    # put back the counters and text indexes the database keeps (core.db.upkeep).
    upkeep_ensure(using)
