"""Background tasks of the publishing app (run by `manage.py db_worker`)."""

from __future__ import annotations

from django_tasks import task

from publishing import pipeline


@task()
def product_pipeline(*, product_id: str, prepaid: bool = False) -> str:
    """Upload → create → publish one product, continuing after the last step that succeeded."""
    return pipeline.product_run(product_id=product_id, prepaid=prepaid)
