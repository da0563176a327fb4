"""The web side and a real worker process write at the same time; "database is locked" never reaches a user.

On SQLite this relies on WAL, the busy timeout and IMMEDIATE transactions (settings); on PostgreSQL the
same test checks plain concurrent writes.
"""

import time

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from images.models import Generation, GenerationStatus, Image
from tests.servers import WorkerProcess

ROUNDS = 12


@pytest.mark.django_db(transaction=True)
def test_api_writes_while_a_worker_writes_never_see_a_locked_database(superuser, settings, tmp_path):
    settings.RATE_LIMITS = {tier: (100_000, 3600) for tier in ("generation", "publishing", "approval", "read")}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser).key}")
    worker = WorkerProcess(data_dir=tmp_path).start()
    statuses: list[int] = []
    approved: set[str] = set()

    def approve_new_images() -> None:
        for image_id in Image.objects.exclude(id__in=approved).values_list("id", flat=True):
            response = client.post(f"/api/v1/images/{image_id}/approve", {"note": "ok"}, format="json")
            statuses.append(response.status_code)
            approved.add(image_id)

    try:
        for n in range(ROUNDS):
            response = client.post(
                "/api/v1/generate",
                {"prompt": f"retro sunset cat number {n}", "batch_size": 3, "width": 512, "height": 512,
                 "backend": "procedural"},
                format="json",
            )
            statuses.append(response.status_code)
            if n == ROUNDS // 2:
                # Make sure the two sides overlap: the worker is producing while requests keep coming.
                deadline = time.monotonic() + 20
                while not Image.objects.exists():
                    assert time.monotonic() < deadline and worker.process.poll() is None, worker.output()
                    time.sleep(0.02)
            approve_new_images()
        assert approved, "the worker wrote nothing while the API was writing"
        deadline = time.monotonic() + 40
        while Generation.objects.exclude(status=GenerationStatus.COMPLETED).exists():
            assert time.monotonic() < deadline and worker.process.poll() is None, worker.output()
            approve_new_images()
            time.sleep(0.02)
        approve_new_images()
    finally:
        worker.stop()

    assert statuses.count(202) == ROUNDS
    assert all(code in (200, 202) for code in statuses), statuses
    assert Image.objects.count() == 3 * ROUNDS
    assert Image.objects.filter(status="approved").count() == 3 * ROUNDS
    assert "database is locked" not in worker.output()
    assert "Traceback" not in worker.output()
