"""Shared fixtures: users in each role, and a data directory of the test run's own."""

from __future__ import annotations

import importlib
import io
import ipaddress
import os
import socket

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connections
from PIL import Image as PILImage

from core.actors import Actor, Via
from core.roles import roles_grant
from images.models import Image, ImageStatus
from tests.servers.relay import RoundTripRelay

# The data directory was prepared by tests/bootstrap.py before Django started. Worker and other
# subprocesses the tests start (some with a data directory of their own) inherit this environment:
# they sign and check with this process's key (a print-file link made here is fetched from a worker),
# and write their metrics where this process's /api/metrics reads them.
os.environ["SECRET_KEY"] = settings.SECRET_KEY
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)


@pytest.fixture(autouse=True, scope="session")
def _empty_redis():
    """A test run starts with REDIS_URL's database empty: rate-limit windows of an earlier run name the
    same user ids (a new test database numbers them from 1 again) and would count against this one."""
    if settings.REDIS_URL:
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(autouse=True)
def _no_outside_dns(monkeypatch):
    """Names resolve only to loopback: a test never asks the network (webhook URLs are resolved when saved)."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        try:
            ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
        except ValueError:
            if name.lower() not in ("localhost", "localhost.localdomain") and not name.lower().endswith(".localhost"):
                raise socket.gaierror(socket.EAI_NONAME, f"{name}: tests resolve no outside names") from None
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EXPORT_DIR = tmp_path / "exports"


# The migrations that create the role groups; a transactional test's flush empties the tables they filled.
ROLE_MIGRATIONS = ("images.migrations.0002_roles", "publishing.migrations.0003_roles", "webhooks.migrations.0002_roles")


def roles_restore() -> None:
    """Create the role groups again, with their permissions, as the migrations did."""
    for name in ROLE_MIGRATIONS:
        roles_grant(apps, importlib.import_module(name).GRANTS)


def make_user(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if role:
        if not Group.objects.filter(name=role).exists():
            roles_restore()
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def client_user(db) -> User:
    return make_user("client1", "clients")


@pytest.fixture
def reviewer(db) -> User:
    return make_user("reviewer1", "reviewers")


@pytest.fixture
def publisher(db) -> User:
    return make_user("publisher1", "publishers")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(username="root", password="pw-root")


@pytest.fixture
def reviewer_actor(reviewer) -> Actor:
    return Actor(reviewer, Via.API)


def png_bytes(width: int = 64, height: int = 64, color=(200, 40, 40), dpi: int | None = None) -> bytes:
    buffer = io.BytesIO()
    kwargs = {"dpi": (dpi, dpi)} if dpi else {}
    PILImage.new("RGB", (width, height), color).save(buffer, "PNG", **kwargs)
    return buffer.getvalue()


@pytest.fixture
def make_image(db):
    """Create an image row in a given status directly (the fixture, not the service under test)."""
    from django.core.files.base import ContentFile

    counter = iter(range(1, 1_000_000))

    def make(status: str = ImageStatus.PENDING, prompt: str = "retro sunset cat", **fields) -> Image:
        n = next(counter)
        image = Image(status=status, prompt=prompt, width=64, height=64, format="PNG", sha256=f"{n:064x}", **fields)
        image.file.save(f"fixture-{n}.png", ContentFile(png_bytes()), save=False)
        image.save()
        return image

    return make


@pytest.fixture
def relay():
    """The default connection (PostgreSQL), reconnected through a relay that counts its round trips;
    for tests marked `django_db(transaction=True)`, so that the new connection sees the rows they made."""
    original = connections["default"]
    relay = RoundTripRelay(original.settings_dict["HOST"] or "127.0.0.1", int(original.settings_dict["PORT"] or 5432))
    relayed = type(original)({**original.settings_dict, "HOST": "127.0.0.1", "PORT": relay.port}, alias="default")
    connections["default"] = relayed
    try:
        relayed.ensure_connection()
        yield relay
    finally:
        relayed.close()
        connections["default"] = original
        relay.close()
