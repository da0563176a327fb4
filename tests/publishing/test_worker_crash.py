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


def kill_when_held(worker: WorkerProcess, arrived: threading.Event, release: threading.Event, what: str,
                   check=None) -> None:
    """SIGKILL `worker` while the stand-in holds its request (`arrived`), then let the stand-in go on."""
    try:
        assert arrived.wait(60), f"the worker never reached {what}\n" + worker.output()[-3000:]
        if check is not None:
            check()
        worker.signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        release.set()
        worker.stop()


def resume(printify_url: str, data_dir: Path, done, timeout: float = 60) -> tuple[bool, str]:
    """Start the next worker until `done()` (bounded); whether it got there, and the worker's output."""
    second = start_worker(printify_url, data_dir, "second")
    try:
        return wait_for(done, timeout), second.output()[-3000:]
    finally:
        second.stop()


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

    def publishing_with_its_product() -> None:
        product.refresh_from_db()
        assert product.status == ProductStatus.PUBLISHING and product.external_id

    kill_when_held(start_worker(printify.url, tmp_path, "first"), arrived, release, "the publish step",
                   check=publishing_with_its_product)
    finished, output = resume(
        printify.url, tmp_path, lambda: Product.objects.get(id=product.id).status in {"published", "failed"}
    )
    product.refresh_from_db()
    assert finished and product.status == ProductStatus.PUBLISHED, (product.error, output)
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

    kill_when_held(start_worker(printify.url, tmp_path, "first"), arrived, release, f"the {step} step")
    product.refresh_from_db()
    assert product.status == ProductStatus.UPLOADING and not product.external_id

    finished, output = resume(
        printify.url, tmp_path, lambda: Product.objects.get(id=product.id).status in {"published", "failed"}
    )
    product.refresh_from_db()
    assert finished and product.status == ProductStatus.PUBLISHED, (product.error, output)
    assert len(printify.uploads) == 1 and product.external_upload_id in printify.uploads
    assert len(printify.products) == 1 and product.external_id in printify.products
    assert printify.products[product.external_id]["publish_count"] == 1
    assert printify.calls["create"] == 1  # the product made before the kill was found, not made again
    # An upload that never reached Printify is sent again; one that did is found by its file name.
    assert printify.calls["upload"] == (2 if step == "upload" and not after else 1)
    assert printify.calls["uploads"] == (1 if step == "upload" else 0)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_way_through_three_products_ends_with_exactly_three(
    printify, hoodie, approved, tmp_path
):
    """One design to three templates; the worker dies while Printify makes the second product."""
    from publishing.models import ProductTemplate  # noqa: PLC0415
    from publishing.services import image_publish_products  # noqa: PLC0415

    tee = ProductTemplate.objects.create(name="Tee", blueprint_id=6, print_provider_id=99, variant_ids=[12100])
    mug = ProductTemplate.objects.create(name="Mug", blueprint_id=68, print_provider_id=1, variant_ids=[33719])
    arrived, release = threading.Event(), threading.Event()

    def hold() -> None:
        arrived.set()
        release.wait(30)

    # The first create goes through; the second is carried out by Printify, then its answer is held and lost.
    printify.inject("create", Fault(), Fault(hook=hold, drop=True, after=True))
    (image,) = approved()
    products = image_publish_products(image_id=image.id, actor=Actor(None, Via.COMMAND),
                                      template_ids=[hoodie.id, tee.id, mug.id])

    kill_when_held(start_worker(printify.url, tmp_path, "first"), arrived, release, "the second create")
    finished, output = resume(printify.url, tmp_path, lambda: not Product.objects.filter(image_id=image.id).exclude(
        status__in=["published", "failed"]).exists(), timeout=90)
    rows = list(Product.objects.filter(image_id=image.id))
    assert finished and len(rows) == 3, output
    assert {p.status for p in rows} == {ProductStatus.PUBLISHED}, [(p.id, p.error) for p in rows]
    assert {p.id for p in rows} == {p.id for p in products}
    assert len(printify.products) == 3 and {p.external_id for p in rows} == set(printify.products)
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 3
    image.refresh_from_db()
    assert image.status == "published"
