from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The dispatcher's module imports models, which Django allows only once the registry is ready.
        from core import metrics  # noqa: PLC0415
        from core.worker import worker_companion_register  # noqa: PLC0415
        from webhooks.delivery import Dispatcher  # noqa: PLC0415
        from webhooks.selectors import delivery_backlog_count, outbox_backlog_count  # noqa: PLC0415

        # Every task worker process also delivers webhooks (see webhooks/delivery.py).
        worker_companion_register(Dispatcher)
        metrics.WEBHOOK_BACKLOG.read_with(delivery_backlog_count)
        metrics.WEBHOOK_OUTBOX_BACKLOG.read_with(outbox_backlog_count)
