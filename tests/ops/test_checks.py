"""check_config's findings about the webhook schedule and StatsD."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core.checks import check_configuration, config_issues

# check_config asks the database server for its connection limit (W024) on PostgreSQL.
pytestmark = pytest.mark.django_db


def report() -> str:
    out = io.StringIO()
    try:
        call_command("check_config", "--no-create", stdout=out, stderr=io.StringIO())
    except CommandError:
        pass
    return out.getvalue()


def codes() -> set[str]:
    return {issue.code for issue in config_issues() if issue.code}


def test_the_defaults_raise_none_of_these_findings():
    assert not codes() & {"W020", "E020", "W021", "E021", "W022", "W023"}
    assert "[INFO] STATSD_HOST: StatsD disabled" in report()


def test_a_shrinking_retry_schedule_is_a_warning(settings):
    settings.WEBHOOK_RETRY_DELAYS = [5, 3600, 60]
    assert "W020" in codes()
    assert "WEBHOOK_RETRY_DELAYS: the delays should not shrink" in report()


def test_retention_shorter_than_the_retry_schedule_is_an_error(settings):
    settings.WEBHOOK_RETRY_DELAYS = [86400] * 5
    settings.WEBHOOK_RETENTION_DAYS = 3
    out = report()
    assert "✗ [ERROR] WEBHOOK_RETENTION_DAYS: 3 day(s) is not longer than the retry schedule (5.0 days)" in out
    assert "pod_gateway.E020" in {message.id for message in check_configuration()}


def test_a_sending_pool_one_subscription_can_fill_is_a_warning(settings):
    settings.WEBHOOK_CONCURRENCY = 10
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 10
    assert "W021" in codes()
    assert "one slow receiver can take every thread" in report()


@pytest.mark.parametrize("prefix", ["pod:prod", "pod|x", "pod gw", "pod..x"])
def test_a_statsd_prefix_the_line_format_cannot_carry_is_an_error(settings, prefix):
    settings.STATSD_HOST, settings.STATSD_PREFIX = "127.0.0.1", prefix
    assert "E021" in codes()


def test_a_good_statsd_configuration_has_no_finding(settings):
    settings.STATSD_HOST, settings.STATSD_PREFIX = "127.0.0.1", "shop-1.pod"
    assert [issue for issue in config_issues() if issue.setting.startswith("STATSD")] == []


def test_a_statsd_host_that_does_not_resolve_is_reported_not_checked_on_every_command(settings):
    settings.STATSD_HOST = "statsd.invalid"  # tests resolve no outside names: this lookup fails
    assert "⚠ [WARNING] STATSD_HOST: 'statsd.invalid' does not resolve" in report()
    assert "pod_gateway.W022" not in {message.id for message in check_configuration()}


def test_more_web_threads_than_pooled_connections_is_a_warning_on_postgresql(settings):
    settings.WEB_THREADS = settings.DATABASE_POOL_MAX_SIZE + 1
    postgresql = connection.vendor == "postgresql"
    assert ("W023" in codes()) is postgresql
    settings.WEB_THREADS = settings.DATABASE_POOL_MAX_SIZE
    assert "W023" not in codes()


def test_pools_that_can_outnumber_the_servers_connection_limit_are_reported_not_system_checked(settings):
    settings.WEB_WORKERS = 10_000
    postgresql = connection.vendor == "postgresql"
    assert ("W024" in codes()) is postgresql
    assert "pod_gateway.W024" not in {message.id for message in check_configuration()}
    settings.WEB_WORKERS = 1
    assert "W024" not in codes()
