"""Background tasks of the publishing app (run by `manage.py db_worker`)."""

from __future__ import annotations

import logging

from django_tasks import task

from publishing import outcomes, pipeline
from publishing.models import Product

logger = logging.getLogger(__name__)


@task()
def product_pipeline(*, product_id: str, prepaid: bool = False) -> str:
    """Upload → create → publish one product, continuing after the last step that succeeded.

    When Printify's limits ask for a long wait, the task enqueues its own continuation for then
    (with the slot already reserved) instead of holding the worker.
    """
    try:
        return pipeline.product_run(product_id=product_id, prepaid=prepaid)
    except pipeline.Deferred as deferred:
        result = product_pipeline.using(run_after=deferred.run_after).enqueue(product_id=product_id, prepaid=True)
        product = Product.objects.get(id=product_id)
        outcomes.product_progress(product=product, task_id=str(result.id))
        logger.info("Product %s paced: continues at %s", product_id, deferred.run_after.isoformat())
        return "deferred"
