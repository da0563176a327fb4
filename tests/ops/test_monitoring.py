"""The Grafana dashboard and the Prometheus alert rules: valid PromQL, alerts that fire when they should,
and nothing named that the gateway does not export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import prometheus_client
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from core import metrics
from core.actors import Actor, Via
from images.services import image_approve, image_reject

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pod-gateway.json"
PROMETHEUS = ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's prometheus package ships it; .ci/run installs it)"
)
# Made by Prometheus itself for every target, not by the gateway.
PROMETHEUS_OWN = {"up"}
METRIC = re.compile(r"\b(?:pod|django)_[a-zA-Z0-9_:]*|\bup\b")


def dashboard_panels() -> list[dict]:
    return [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel["type"] != "row"]


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def named_metrics(expressions: list[str]) -> set[str]:
    # Quoted label values (`status="429"`) are not metric names.
    return {name for expr in expressions for name in METRIC.findall(re.sub(r'"[^"]*"', '""', expr))}


def exported_names() -> set[str]:
    """Every sample name the gateway's registry can produce, with the suffixes of each metric type."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "summary": ["_sum", "_count"],
                "gauge": [""], "info": ["_info"]}
    names = {gauge.name for gauge in metrics.DATABASE_GAUGES}
    for family in prometheus_client.REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, [""]))
    return names


@pytest.mark.urls("tests.api.infra_urls")
@pytest.mark.django_db
def test_every_metric_the_dashboard_and_the_rules_name_is_exported():
    # django-prometheus makes its request metrics when its middleware first runs.
    assert APIClient().get("/api/things/a1").status_code == 200
    named = named_metrics(dashboard_expressions() + rule_expressions())
    assert {"pod_images_pending_review", "pod_webhook_backlog", "pod_api_request_duration_seconds_bucket",
            "pod_products_failed_total", "django_http_responses_total_by_status_total"} <= named
    assert sorted(named - exported_names() - PROMETHEUS_OWN) == []


@pytest.mark.urls("tests.api.infra_urls")
@pytest.mark.django_db
def test_the_series_the_dashboard_plots_appear_in_a_scrape(make_image, django_capture_on_commit_callbacks):
    images = [make_image() for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        image_approve(image_id=images[0].id, actor=Actor(None, Via.COMMAND))
        image_reject(image_id=images[1].id, actor=Actor(None, Via.COMMAND))
    client = APIClient()
    assert client.get("/api/things/a1").status_code == 200
    response = client.get("/api/metrics")
    assert response.status_code == 200
    samples = {sample.name: sample for family in text_string_to_metric_families(response.content.decode())
               for sample in family.samples}
    assert samples["pod_images_pending_review"].value == 1
    assert samples["pod_webhook_backlog"].value == 0 and samples["pod_webhook_outbox_backlog"].value >= 2
    for name in ("pod_images_approved_total", "pod_images_rejected_total", "pod_api_requests_total",
                 "pod_api_request_duration_seconds_bucket", "django_http_responses_total_by_status_total"):
        assert name in samples, name
    # Each of those is one the dashboard plots.
    assert set(samples) & named_metrics(dashboard_expressions()) >= {
        "pod_images_pending_review", "pod_webhook_backlog", "pod_images_approved_total", "pod_api_requests_total"}


def test_the_dashboard_covers_the_operators_questions():
    titles = {panel["title"] for panel in dashboard_panels()}
    assert {"Review queue depth", "Decisions per hour", "Generation failures by type", "Publish failures per hour",
            "Delivery attempts by outcome", "Webhook backlog", "Latency p95 by endpoint",
            "Rate limited (429)"} <= titles
    ids = [panel["id"] for panel in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_promtool_accepts_the_alert_rules():
    run = promtool("check", "rules", "alerts.yml")
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr


@needs_promtool
def test_the_alerts_fire_when_they_should_and_not_before():
    run = promtool("test", "rules", "alerts.test.yml")
    assert run.returncode == 0 and "SUCCESS" in run.stdout, run.stdout + run.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path):
    # promtool parses recording rules' expressions: one rule per dashboard query.
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{n}", "expr": expr} for n, expr in enumerate(dashboard_expressions())]}]}
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    run = promtool("check", "rules", "dashboard.yml", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


@needs_promtool
def test_the_scrape_configuration_is_valid(tmp_path):
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path)
    (tmp_path / "token").write_text("metrics-token\n")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/pod-gateway-metrics-token",
                                                            str(tmp_path / "token")))
    run = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
