"""A worker killed during any publishing step: the next worker resumes, with one upload, product and publish."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from core.actors import Actor, Via
from publishing.models import Product, ProductStatus
from publishing.services import image_publish
from tests.servers import WorkerProcess
from tests.servers.printify import API_KEY, SHOP_ID, Fault


def start_worker(printify_url: str, data_dir: Path, name: str) -> WorkerProcess:
    # MEDIA_ROOT = DATA_DIR/media, where the test stored the print file.
    return WorkerProcess(data_dir=data_dir, log=data_dir / f"{name}.log", env={
        "PRINTIFY_API_URL": printify_url,
        "PRINTIFY_API_KEY": API_KEY,
        "PRINTIFY_SHOP_ID": str(SHOP_ID),
        "PRINTIFY_BACKOFF_SECONDS": "0.01",
        "WORKER_STALE_SECONDS": "1",
        "PUBLIC_BASE_URL": "",
    }).start()


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_worker_killed_between_create_and_publish_resumes_with_one_product(
    printify, hoodie, approved, settings, tmp_path
):
    assert Path(settings.MEDIA_ROOT) == tmp_path / "media"
    arrived, release = threading.Event(), threading.Event()

    def hold_publish() -> None:
        arrived.set()
        release.wait(30)

    # The first publish request is held, the worker is killed meanwhile, then the connection drops.
    printify.inject("publish", Fault(hook=hold_publish, drop=True))
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=Actor(None, Via.COMMAND))

    first = start_worker(printify.url, tmp_path, "first")
    try:
        assert arrived.wait(60), "the worker never reached the publish step\n" + first.output()[-3000:]
        product.refresh_from_db()
        assert product.status == ProductStatus.PUBLISHING and product.external_id
        first.signal(signal.SIGKILL)
        first.wait(10)
    finally:
        release.set()
        first.stop()

    second = start_worker(printify.url, tmp_path, "second")
    try:
        finished = wait_for(lambda: Product.objects.get(id=product.id).status in {"published", "failed"}, 60)
    finally:
        second.stop()
    product.refresh_from_db()
    assert finished and product.status == ProductStatus.PUBLISHED, (product.error, second.output()[-3000:])
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 1
    assert printify.calls["publish"] == 2  # the dropped one, and the resumed one
    assert len(printify.products) == 1 and printify.products[product.external_id]["published"] is True
    assert product.attempts == 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("step", "after"), [("upload", False), ("upload", True), ("create", True)],
                         ids=["upload", "upload-made", "create-made"])
def test_worker_killed_mid_step_resumes_with_one_upload_product_and_publish(
    printify, hoodie, approved, settings, tmp_path, step, after
):
    """Killed while Printify holds the step's request, before or after carrying it out."""
    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(30)

    printify.inject(step, Fault(hook=hold, drop=True, after=after))
    (image,) = approved()
    product = image_publish(image_id=image.id, actor=Actor(None, Via.COMMAND))

    first = start_worker(printify.url, tmp_path, "first")
    try:
        assert arrived.wait(60), f"the worker never reached the {step} step\n" + first.output()[-3000:]
        first.signal(signal.SIGKILL)
        first.wait(10)
    finally:
        release.set()
        first.stop()
    product.refresh_from_db()
    assert product.status == ProductStatus.UPLOADING and not product.external_id

    second = start_worker(printify.url, tmp_path, "second")
    try:
        finished = wait_for(lambda: Product.objects.get(id=product.id).status in {"published", "failed"}, 60)
    finally:
        second.stop()
    product.refresh_from_db()
    assert finished and product.status == ProductStatus.PUBLISHED, (product.error, second.output()[-3000:])
    assert len(printify.uploads) == 1 and product.external_upload_id in printify.uploads
    assert len(printify.products) == 1 and product.external_id in printify.products
    assert printify.products[product.external_id]["publish_count"] == 1
    assert printify.calls["create"] == 1  # the product made before the kill was found, not made again
    # An upload that never reached Printify is sent again; one that did is found by its file name.
    assert printify.calls["upload"] == (2 if step == "upload" and not after else 1)
    assert printify.calls["uploads"] == (1 if step == "upload" else 0)
