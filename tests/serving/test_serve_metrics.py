"""`make serve` (several web workers + a task worker): /api/metrics counts exactly what was done, across processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.serving.conftest import ROOT, Gateway

TIMEOUT = 15.0


def scrape(gateway: Gateway) -> dict[tuple[str, tuple], float]:
    answer = requests.get(gateway.url + "/api/metrics", timeout=TIMEOUT)
    assert answer.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def api_token(gateway: Gateway, username: str, role: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", "create_api_token", username, "--role", role],
        cwd=ROOT, env=gateway.env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]


def health_count(samples) -> float:
    return samples.get(("pod_api_requests_total", (("endpoint", "/api/health"), ("method", "GET"),
                                                   ("status", "200"))), 0)


def in_flight(samples) -> float:
    return samples[("pod_http_requests_in_flight", ())]


def wait_until(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_counts_are_exact_across_web_workers_task_worker_and_dead_workers(gateway):
    running = gateway("serve", env={"WEB_WORKERS": "3", "GENERATION_BACKEND": "procedural"}, database=True)
    first_workers = running.web_worker_pids()
    assert len(first_workers) == 3
    started = health_count(scrape(running))  # the start-up's own readiness checks

    # Health checks on fresh connections, spread by the kernel over the three workers.
    for _ in range(40):
        assert requests.get(running.url + "/api/health", timeout=TIMEOUT, headers={"Connection": "close"}).ok

    # Generations: requests to the web workers, the work (and its counters) in the task worker.
    # A superuser: a transactional test empties the role groups the migrations made.
    token = api_token(running, "metrics-admin", "admin")
    auth = {"Authorization": f"Token {token}"}
    ids = []
    for n in range(3):
        answer = requests.post(running.url + "/api/v1/generate", headers=auth, timeout=TIMEOUT,
                               json={"prompt": f"retro sunset cat number {n}", "width": 512, "height": 512})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    def all_completed() -> bool:
        return all(
            requests.get(f"{running.url}/api/v1/generations/{gid}", headers=auth, timeout=TIMEOUT).json()["status"]
            == "completed" for gid in ids
        )

    wait_until(all_completed, "the generations to complete")

    # Requests held in flight by slow clients, then every web worker killed while holding them.
    stalled = []
    for _ in range(6):
        sock = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
        sock.sendall(b"POST /api/v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 500\r\n\r\n{")
        stalled.append(sock)
    wait_until(lambda: in_flight(scrape(running)) >= 7, "the stalled requests to be in flight")  # + the scrape
    for pid in first_workers:
        os.kill(pid, signal.SIGKILL)
    for sock in stalled:
        sock.close()
    wait_until(lambda: len(set(running.web_worker_pids()) - set(first_workers)) == 3, "gunicorn to replace them")

    for _ in range(20):
        assert requests.get(running.url + "/api/health", timeout=TIMEOUT, headers={"Connection": "close"}).ok

    samples = scrape(running)
    # The dead workers' counters are still summed; their live gauge is not (gunicorn's child_exit marks them dead).
    assert health_count(samples) - started == 60
    generate = [value for (name, labels), value in samples.items() if name == "pod_api_requests_total"
                and dict(labels).get("method") == "POST" and dict(labels).get("status") == "202"]
    assert generate == [3]
    assert samples[("pod_generation_started_total", ())] == 3
    assert samples[("pod_generation_completed_total", ())] == 3
    assert samples[("pod_generation_duration_seconds_count", ())] == 3
    assert samples[("pod_images_pending_review", ())] == 3
    # This scrape only, once the last health requests' workers have counted them out (a client has its
    # answer a moment before the server's worker is done with the request); the dead workers' seven never.
    wait_until(lambda: in_flight(scrape(running)) == 1, "the in-flight gauge to count only the scrape", timeout=10)
    # Every process wrote its own files, and the health checks reached more than one web worker.
    metrics_dir = running.data_dir / "prometheus"
    writers = {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("counter_*.db")}
    assert running.worker_pid() in writers
    assert len(writers & set(first_workers)) >= 2
    assert all((metrics_dir / f"counter_{pid}.db").exists() for pid in writers)
    assert not any((metrics_dir / f"gauge_livesum_{pid}.db").exists() for pid in first_workers)


def test_runner_web_drops_the_live_gauges_of_web_workers_killed_before_it_started(tmp_path):
    data_dir = tmp_path / "data"
    metrics_dir = data_dir / "prometheus"
    metrics_dir.mkdir(parents=True)
    # A web worker of an earlier run, killed with five requests in flight: its live gauge file stays behind.
    subprocess.run(
        [sys.executable, "-c", "from prometheus_client import Gauge; import os; "
         "Gauge('pod_http_requests_in_flight', 'in flight', multiprocess_mode='livesum').inc(5); os._exit(0)"],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, check=True, timeout=60,
    )
    assert list(metrics_dir.glob("gauge_livesum_*.db"))
    running = Gateway(data_dir, "web", {"WEB_WORKERS": "1"})
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=running.env,
                   check=True, timeout=300)  # `runner web` serves; migrating is the deployment's step before it
    try:
        with running.log.open("ab") as handle:
            running.process = subprocess.Popen([sys.executable, "-m", "pod_gateway.runner", "web"], cwd=ROOT,
                                               env=running.env, stdout=handle, stderr=subprocess.STDOUT)
        def up() -> bool:
            try:
                return requests.get(running.url + "/api/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_until(up, "runner web to answer")
        assert in_flight(scrape(running)) == 1  # this scrape only, not the dead worker's five
    finally:
        running.stop()
