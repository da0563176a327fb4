"""A worker killed between create and publish: the next worker resumes, and there is one product."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from images.models import Via
from images.services import Actor
from publishing.models import Product, ProductStatus
from publishing.services import image_publish
from tests.servers.printify import API_KEY, SHOP_ID, Fault

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(printify_url: str, data_dir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DATA_DIR": str(data_dir),  # MEDIA_ROOT = DATA_DIR/media, where the test stored the print file
        "PRINTIFY_API_URL": printify_url,
        "PRINTIFY_API_KEY": API_KEY,
        "PRINTIFY_SHOP_ID": str(SHOP_ID),
        "PRINTIFY_BACKOFF_SECONDS": "0.01",
        "WORKER_HEARTBEAT_SECONDS": "0.2",
        "WORKER_STALE_SECONDS": "1",
        "PUBLIC_BASE_URL": "",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-startup-delay", "--no-reload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


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

    first = start_worker(printify.url, tmp_path)
    try:
        assert arrived.wait(60), "the worker never reached the publish step"
        product.refresh_from_db()
        assert product.status == ProductStatus.PUBLISHING and product.external_id
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        release.set()
        if first.poll() is None:
            first.kill()

    second = start_worker(printify.url, tmp_path)
    try:
        finished = wait_for(lambda: Product.objects.get(id=product.id).status in {"published", "failed"}, 60)
    finally:
        second.terminate()
        second.wait(10)
    product.refresh_from_db()
    assert finished and product.status == ProductStatus.PUBLISHED, product.error
    assert printify.calls["upload"] == 1 and printify.calls["create"] == 1
    assert printify.calls["publish"] == 2  # the dropped one, and the resumed one
    assert len(printify.products) == 1 and printify.products[product.external_id]["published"] is True
    assert product.attempts == 2
