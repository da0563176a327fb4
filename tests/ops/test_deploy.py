"""The deployment files: the compose stack's shape and health checks, the systemd units, the image's rules.

The image itself is built and run in test_image.py; these read the files an operator starts from.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.servers import database_url

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    unknown = [name for name in names if f'"{name}"' not in settings_text and name not in deploy_text]
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


def unit_commands(unit: Path, data_dir: Path) -> tuple[dict[str, str], list[list[str]], list[str]]:
    """The unit's Environment, ExecStartPre and ExecStart, pointed at this checkout and `data_dir`."""
    text = unit.read_text().replace("\\\n", " ")
    text = text.replace("/opt/pod-gateway/.venv/bin/python", sys.executable)
    text = text.replace("/opt/pod-gateway", str(ROOT)).replace("/var/lib/pod-gateway", str(data_dir))
    env: dict[str, str] = {}
    pre: list[list[str]] = []
    start: list[str] = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            env.update(item.split("=", 1) for item in shlex.split(value))
        elif key == "ExecStartPre":
            pre.append(shlex.split(value))
        elif key == "ExecStart":
            start = shlex.split(value)
    return env, pre, start


@pytest.mark.django_db(transaction=True)
def test_the_systemd_units_commands_serve_ready_and_stop_cleanly_on_sigterm(tmp_path):
    """What systemd would run (ExecStartPre, then ExecStart of both units), on the test database."""
    units = DEPLOY / "systemd"
    port = _free_port()
    processes = []
    try:
        for name in ("pod-gateway-web.service", "pod-gateway-worker.service"):
            unit_env, pre, start = unit_commands(units / name, tmp_path)
            env = {**os.environ, **unit_env, "DATABASE_URL": database_url(), "PORT": str(port),
                   "WEB_WORKERS": "1", "WORKER_HEARTBEAT_SECONDS": "0.2"}
            for command in pre:
                subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=180, capture_output=True)
            log = (tmp_path / f"{name}.log").open("wb")
            processes.append(subprocess.Popen(
                start, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            ))
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ready", timeout=5) as response:
                    status = response.status
            except (OSError, urllib.error.URLError):
                time.sleep(0.3)
        logs = "".join(path.read_text(errors="replace")[-2000:] for path in tmp_path.glob("*.log"))
        assert status == 200, logs
        # The web unit's main process is gunicorn's master itself (`runner web` execs it), so the unit's
        # SIGTERM reaches the server directly; the worker unit's is the task worker.
        assert b"gunicorn" in Path(f"/proc/{processes[0].pid}/cmdline").read_bytes()
        assert b"db_worker" in Path(f"/proc/{processes[1].pid}/cmdline").read_bytes()
        # KillMode=mixed: SIGTERM to each unit's main process.
        for process in processes:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(timeout=60) for process in processes] == [0, 0], logs
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # the unit's whole process group, as systemd would
                process.wait(timeout=10)
