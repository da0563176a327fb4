"""X-Forwarded-For is believed only from TRUSTED_PROXIES; rate-limit buckets are bounded whatever is sent."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from api.clientip import client_ip
from api.models import RateLimitBucket
from api.throttling import BUCKET_KEY_MAX, bucket_key
from core.checks import config_issues
from tests.test_settings import load_setting

pytestmark = pytest.mark.django_db
infra_urls = pytest.mark.urls("tests.api.infra_urls")


@pytest.fixture
def approval_limit(settings):
    settings.REDIS_URL = ""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "approval": (2, 3600)}


def _ip_of(remote: str, forwarded: str | None = None) -> str:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **extra))


@infra_urls
def test_spoofed_forwarding_headers_get_no_fresh_limit_by_default(approval_limit):
    client = APIClient()
    statuses = [
        client.post("/api/limited", {}, format="json", REMOTE_ADDR="198.51.100.7",
                    HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(5)
    ]
    assert statuses == [200, 200, 429, 429, 429]
    assert RateLimitBucket.objects.count() == 1


@infra_urls
def test_a_6000_character_forwarded_value_is_not_stored(approval_limit, settings):
    settings.TRUSTED_PROXIES = ["198.51.100.0/24"]
    response = APIClient().post("/api/limited", {}, format="json", REMOTE_ADDR="198.51.100.7",
                                HTTP_X_FORWARDED_FOR="9" * 6000)
    assert response.status_code == 200
    (bucket,) = RateLimitBucket.objects.all()
    assert bucket.key == "approval:ip:198.51.100.7"  # not an address: the proxy's own is the client


def test_forwarded_addresses_are_read_only_from_trusted_proxies(settings):
    assert _ip_of("198.51.100.7", "203.0.113.9") == "198.51.100.7"
    settings.TRUSTED_PROXIES = ["10.0.0.1", "192.168.0.0/16", "fd00::/8"]
    assert _ip_of("10.0.0.1", "203.0.113.9") == "203.0.113.9"
    assert _ip_of("10.0.0.2", "203.0.113.9") == "10.0.0.2"  # not in the list
    # The rightmost address no trusted proxy owns is the client; what it claimed for itself is ignored.
    assert _ip_of("10.0.0.1", "1.2.3.4, 203.0.113.9, 192.168.4.4") == "203.0.113.9"
    assert _ip_of("fd00::5", "[2001:db8::1]:443") == "2001:db8::1"
    assert _ip_of("::ffff:10.0.0.1", "203.0.113.9:8080") == "203.0.113.9"
    assert _ip_of("10.0.0.1", "nonsense, 192.168.1.1") == "192.168.1.1"
    assert _ip_of("10.0.0.1", "") == "10.0.0.1"


@infra_urls
def test_behind_a_trusted_proxy_each_client_has_its_own_limit(approval_limit, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    client = APIClient()

    def post(forwarded: str) -> int:
        return client.post("/api/limited", {}, format="json", REMOTE_ADDR="10.1.2.3",
                           HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert [post("203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert post("203.0.113.2") == 200


def test_bucket_keys_are_bounded():
    assert bucket_key("read", "user:17") == "read:user:17"
    long = bucket_key("read", "ip:" + "x" * 6000)
    assert len(long) <= BUCKET_KEY_MAX and long.startswith("read:sha256:")


def test_the_admin_login_limit_uses_the_same_client_address(settings):
    settings.ADMIN_LOGIN_RATE = (2, 300)
    client = Client()
    seed = uuid.uuid4().int  # the counters outlive the test database (files or Redis): a fresh address
    address = f"10.{seed % 250}.{(seed >> 8) % 250}.{(seed >> 16) % 250 + 1}"
    statuses = [
        client.post("/admin/login/", {"username": f"u{n}-{uuid.uuid4().hex}", "password": "x"},
                    REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_the_admin_login_answers_when_the_socket_gives_no_address(settings):
    settings.ADMIN_LOGIN_RATE = (100, 300)
    response = Client().post("/admin/login/", {"username": f"u-{uuid.uuid4().hex}", "password": "x"}, REMOTE_ADDR="")
    assert response.status_code == 200  # the login form again, not a 500


def test_check_config_reports_trusted_proxies_and_warns_on_public_ranges(settings):
    assert "TRUSTED_PROXIES" in {issue.setting for issue in config_issues()}
    settings.TRUSTED_PROXIES = ["0.0.0.0/0"]
    assert "W008" in {issue.code for issue in config_issues()}
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "203.0.113.10"]
    assert "W008" not in {issue.code for issue in config_issues()}
    out = io.StringIO()
    try:
        call_command("check_config", "--no-create", stdout=out, stderr=io.StringIO())
    except CommandError:
        pass
    assert "X-Forwarded-For is read from 10.0.0.0/8, 203.0.113.10" in out.getvalue()


def test_trusted_proxies_are_read_from_the_environment_and_malformed_ones_stop_start(tmp_path):
    result = load_setting("TRUSTED_PROXIES", DATA_DIR=str(tmp_path), TRUSTED_PROXIES="10.0.0.1, 172.16.0.0/12")
    assert result.stdout.strip() == "['10.0.0.1/32', '172.16.0.0/12']"
    result = load_setting("TRUSTED_PROXIES", DATA_DIR=str(tmp_path), TRUSTED_PROXIES="10.0.0.1,proxy.local")
    assert result.returncode != 0 and "TRUSTED_PROXIES" in result.stderr.strip().splitlines()[-1]
