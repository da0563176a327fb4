"""StatsD: with STATSD_HOST set, the pod_* counters, timings and gauges also reach a real UDP listener."""

from __future__ import annotations

import socket
import time

import pytest
from rest_framework.test import APIClient

from core import metrics
from core.actors import Actor, Via
from images.models import ImageStatus
from images.services import image_approve, image_reject
from tests.servers import WorkerProcess

pytestmark = [pytest.mark.urls("tests.api.infra_urls"), pytest.mark.django_db]


@pytest.fixture
def listener(settings):
    """A UDP socket on 127.0.0.1 standing in for the StatsD daemon; `packets()` returns what arrived."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    settings.STATSD_HOST = "127.0.0.1"
    settings.STATSD_PORT = sock.getsockname()[1]
    settings.STATSD_PREFIX = "pod"

    def packets(until: str | None = None, wait: float = 5.0) -> list[str]:
        """Every metric line received so far; with `until`, keep reading (bounded) until a line starts so."""
        lines: list[str] = []
        deadline = time.monotonic() + wait
        while True:
            try:
                lines += sock.recv(65535).decode().splitlines()
            except TimeoutError:
                if until is None or any(line.startswith(until) for line in lines) or time.monotonic() > deadline:
                    return lines

    yield packets
    sock.close()


def test_review_decisions_are_counted_in_statsd(listener, make_image, django_capture_on_commit_callbacks):
    approved, rejected = make_image(), make_image()
    actor = Actor(None, Via.COMMAND)
    with django_capture_on_commit_callbacks(execute=True):
        image_approve(image_id=approved.id, actor=actor)
        image_reject(image_id=rejected.id, actor=actor, reason="blurry")
    lines = listener(until="pod.images_rejected")
    assert "pod.images_approved:1|c" in lines
    assert "pod.images_rejected:1|c" in lines


def test_api_requests_are_counted_and_timed_with_their_labels_in_the_name(listener):
    assert APIClient().get("/api/things/a1").status_code == 200
    lines = listener(until="pod.api_request_duration")
    assert "pod.api_requests.GET.api_things_thing_id.200:1|c" in lines
    timings = [line for line in lines if line.startswith("pod.api_request_duration.GET.api_things_thing_id:")]
    assert len(timings) == 1 and timings[0].endswith("|ms")
    assert float(timings[0].split(":")[1].split("|")[0]) >= 0


def test_labelled_counters_and_histograms_name_their_label_values(listener, settings):
    settings.STATSD_PREFIX = "shop1.pod"
    metrics.GENERATION_FAILED.labels(error_type="timeout").inc()
    metrics.GENERATION_DURATION.observe(1.5)
    lines = listener(until="shop1.pod.generation_duration")
    assert "shop1.pod.generation_failed.timeout:1|c" in lines
    assert "shop1.pod.generation_duration:1500.000000|ms" in lines


def test_the_gauges_are_sent_with_the_values_the_database_holds(listener, make_image):
    for _ in range(3):
        make_image()
    make_image(status=ImageStatus.APPROVED)
    metrics.statsd_gauges_send()
    lines = listener(until="pod.webhook_outbox_backlog")
    assert "pod.images_pending_review:3|g" in lines
    assert "pod.webhook_backlog:0|g" in lines


@pytest.mark.django_db(transaction=True)  # the reporter thread reads through a connection of its own
def test_each_worker_reports_the_gauges_on_its_own(listener, settings, make_image):
    make_image()
    settings.STATSD_GAUGE_SECONDS = 0.1
    reporter = metrics.StatsdGaugeReporter()
    reporter.start()
    try:
        lines = listener(until="pod.images_pending_review")
    finally:
        reporter.stop()
    assert "pod.images_pending_review:1|g" in lines
    assert not reporter.is_alive()


def test_nothing_is_sent_without_statsd_host(listener, settings):
    settings.STATSD_HOST = ""
    metrics.IMAGES_APPROVED.inc()
    metrics.statsd_gauges_send()
    reporter = metrics.StatsdGaugeReporter()
    reporter.start()
    reporter.stop()
    assert listener() == []
    assert not reporter.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_real_task_worker_pushes_the_gauges_to_statsd(listener, settings, make_image, tmp_path):
    for _ in range(2):
        make_image()
    env = {"STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(settings.STATSD_PORT), "STATSD_GAUGE_SECONDS": "0.2"}
    worker = WorkerProcess(data_dir=tmp_path, env=env, log=tmp_path / "worker.log").start()
    try:
        lines = listener(until="pod.images_pending_review", wait=60)
    finally:
        worker.stop()
    assert "pod.images_pending_review:2|g" in lines, worker.output()[-3000:]


def test_a_statsd_host_that_did_not_resolve_is_tried_again_later(listener, settings, monkeypatch):
    real = socket.getaddrinfo
    answers = iter([socket.gaierror(socket.EAI_AGAIN, "statsd is still starting")])

    def getaddrinfo(*args, **kwargs):  # the resolver fails once (the StatsD host is not up yet), then answers
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    settings.STATSD_HOST = "localhost"
    monkeypatch.setattr(metrics, "_client", None)
    monkeypatch.setattr(metrics, "STATSD_RETRY_SECONDS", 0.0)
    assert metrics.statsd_client() is None
    metrics.IMAGES_APPROVED.inc()
    assert metrics.statsd_client() is not None
    metrics.IMAGES_APPROVED.inc()
    assert any(line.startswith("pod.images_approved:1|c") for line in listener(until="pod.images_approved"))
