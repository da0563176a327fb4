"""The deployment files: the compose stack's shape and health checks, the systemd units, the image's rules.

The image itself is built and run in test_image.py; these read the files an operator starts from.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_stack_runs_web_worker_postgres_and_redis_each_with_a_health_check(compose):
    services = compose["services"]
    assert set(services) == {"web", "worker", "db", "redis"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
    assert services["web"]["healthcheck"]["test"][-1].endswith("/api/health")
    # The worker is healthy when the gateway is ready: database, cache and its heartbeat.
    assert services["worker"]["healthcheck"]["test"][-1].endswith("/api/ready")
    assert services["web"]["command"] == ["web"] and services["worker"]["command"] == ["worker"]


def test_web_and_worker_share_one_image_the_media_volume_and_one_pid_namespace(compose):
    web, worker = compose["services"]["web"], compose["services"]["worker"]
    assert web["image"] == worker["image"] and web["build"] == worker["build"]
    assert web["build"]["dockerfile"] == "deploy/Dockerfile"
    assert "BASE_IMAGE" in web["build"]["args"]
    assert web["volumes"] == worker["volumes"] == ["media:/data"]
    assert worker["pid"] == "service:web"
    assert {"media", "database"} <= set(compose["volumes"])
    assert compose["services"]["db"]["volumes"] == ["database:/var/lib/postgresql/data"]
    for name in ("db", "redis", "web"):
        assert worker["depends_on"][name]["condition"] == "service_healthy"
    assert web["environment"]["DATABASE_URL"].startswith("postgres://")
    assert web["environment"]["REDIS_URL"].startswith("redis://redis:")


def test_the_dockerfile_takes_its_base_as_an_argument_and_runs_as_a_user_without_build_tools():
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert instructions[0].startswith("ARG BASE_IMAGE=")
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    final = text[text.rindex("\nFROM "):]
    assert re.search(r"^USER pod", final, re.M)
    for tool in ("pip install", "build-essential", "gcc", "python3-venv"):
        assert tool not in final, tool


def test_every_example_setting_is_one_the_settings_or_the_deploy_files_read():
    settings_text = (ROOT / "pod_gateway" / "settings.py").read_text() + (ROOT / "core" / "datadir.py").read_text()
    deploy_text = (DEPLOY / "entrypoint.sh").read_text() + (DEPLOY / "compose.yaml").read_text()
    names = re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (DEPLOY / "env.example").read_text(), re.M)
    assert "SECRET_KEY" in names and "ALLOWED_HOSTS" in names
    # TRUSTED_PROXIES is part of the contract; the settings that read it may land separately.
    unknown = [name for name in names if f'"{name}"' not in settings_text and name not in deploy_text
               and name != "TRUSTED_PROXIES"]
    assert unknown == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_verify(tmp_path):
    # The units name /opt/pod-gateway; point them at this checkout so systemd can check the commands exist.
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/pod-gateway/.venv/bin/python", sys.executable)
        (tmp_path / unit.name).write_text(text.replace("/opt/pod-gateway", str(ROOT)))
    run = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True, text=True, timeout=60,
    )
    problems = [line for line in (run.stdout + run.stderr).splitlines() if "pod-gateway" in line]
    assert run.returncode == 0 and problems == [], run.stdout + run.stderr


def test_the_container_and_the_unit_run_the_web_server_the_runner_runs():
    """`runner web` is `make serve`'s web server alone: the deployments follow it when it changes."""
    assert "exec python -m pod_gateway.runner web" in (DEPLOY / "entrypoint.sh").read_text()
    unit = (DEPLOY / "systemd" / "pod-gateway-web.service").read_text()
    assert "ExecStart=/opt/pod-gateway/.venv/bin/python -m pod_gateway.runner web" in unit
    worker = (DEPLOY / "systemd" / "pod-gateway-worker.service").read_text()
    assert "manage.py db_worker --no-reload --queue-name *" in worker
    assert "exec python manage.py db_worker --no-reload --queue-name '*'" in (DEPLOY / "entrypoint.sh").read_text()
