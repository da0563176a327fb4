"""The container image, for real: built with podman, web + worker started from it, /api/ready answering,
a generation drawn by the worker container and counted in web's /api/metrics.

deploy/image-test.sh does the work (it is `make image-test`); this test runs it and skips, saying why,
only where it cannot run: no podman or runc, no base image and no debootstrap to make one, no PostgreSQL
or Redis on this machine. It runs in the PostgreSQL pass of the suite (the containers use that server,
with a database of their own), once per CI run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "image-test.sh"
SKIPPED = 77

pytestmark = pytest.mark.image


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_image_serves_ready_with_web_and_worker_on_postgres_and_redis():
    database = urlsplit(os.environ.get("DATABASE_URL", ""))
    if not database.scheme.startswith("postgres"):
        pytest.skip("the container test runs in the PostgreSQL pass (DATABASE_URL=postgres://…); `make image-test`")
    for tool, package in (("podman", "podman"), ("runc", "runc")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install {package}): the container image is not tested here")
    # A free port: several test runs on one machine must not collide.
    # This environment (pip's PIP_* settings among it), but not the test run's own database and data directory.
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DATA_DIR")}
    env["IMAGE_TEST_PORT"] = str(_free_port())
    # The same servers as this run, a database of the containers' own (made and dropped by the script).
    server = database._replace(path=f"/pod_image_test_{os.getpid()}").geturl()
    env["IMAGE_TEST_DATABASE_URL"] = server
    env["IMAGE_TEST_DROP_DATABASE"] = "1"
    if os.environ.get("REDIS_URL"):
        env["IMAGE_TEST_REDIS_URL"] = os.environ["REDIS_URL"]
    run = subprocess.run(
        ["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    output = run.stdout + run.stderr[-4000:]
    if run.returncode == SKIPPED:
        pytest.skip(run.stdout.strip().splitlines()[-1])
    assert run.returncode == 0, output
    assert '"status": "ready"' in run.stdout
    assert '"worker": "ok"' in run.stdout
    # A generation queued through web was drawn by the worker container and counted in web's metrics.
    assert "image-test passed" in run.stdout and "generated and counted" in run.stdout
