"""Fixtures for publishing tests: the Printify stand-in, templates and approved images."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from images.models import ImageStatus
from publishing.models import ProductTemplate
from tests.servers.printify import API_KEY, SHOP_ID, PrintifyStandIn


@pytest.fixture
def printify(settings):
    stand_in = PrintifyStandIn().start()
    settings.PRINTIFY_API_URL = stand_in.url
    settings.PRINTIFY_API_KEY = API_KEY
    settings.PRINTIFY_SHOP_ID = str(SHOP_ID)
    # Keep retry backoff and Retry-After waits tiny so failure tests stay fast.
    settings.PRINTIFY_BACKOFF_SECONDS = 0.01
    settings.PRINTIFY_RETRY_AFTER_MAX = 1
    settings.PRINTIFY_RETRIES = 3
    settings.PRINTIFY_TIMEOUT_SECONDS = 2.0
    settings.PUBLIC_BASE_URL = ""
    cache.clear()  # pacing buckets
    yield stand_in
    stand_in.stop()
    cache.clear()


@pytest.fixture
def hoodie(db) -> ProductTemplate:
    return ProductTemplate.objects.create(
        name="Gildan 18500 hoodie, front, $34.99", blueprint_id=77, print_provider_id=29,
        variant_ids=[32918, 32919], price_cents=3499, title_template="{prompt} hoodie",
        description_template="A {style} design: {prompt}", tags=["hoodie", "ai-art"], is_default=True,
    )


@pytest.fixture
def approved(make_image):
    def make(n: int = 1, **fields):
        return [make_image(status=ImageStatus.APPROVED, **fields) for _ in range(n)]

    return make


def run_worker() -> int:
    """Run every task that is due, in this process, the way django_tasks_db's worker runs them.

    (The `db_worker` command itself closes the database connection between tasks, which the test
    transaction cannot survive; the worker-process test runs the real command instead.)
    """
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    max_tasks=None, worker_id="in-process-test-worker", excluded_queue_names=[])
    count = 0
    while (result := DBTaskResult.objects.ready().order_by("enqueued_at").first()) is not None:
        result.claim(worker.worker_id)
        worker.run_task(result)
        count += 1
    return count
