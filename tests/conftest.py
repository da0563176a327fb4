"""Shared fixtures: users in each role, and a data directory of the test run's own."""

from __future__ import annotations

import io
import ipaddress
import os
import socket

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from PIL import Image as PILImage
from prometheus_client import values

from core import datadir
from core.actors import Actor, Via
from images.models import Image, ImageStatus

# The test run's data directory, as `make run` prepares one: the test database, media and metrics
# files go there. Worker and other subprocesses the tests start inherit this environment: they sign
# and check with this process's key (a print-file link made here is fetched from a worker), and
# write their metrics where this process's /api/metrics reads them.
datadir.prepare(settings.DATA_DIR, settings.PROMETHEUS_MULTIPROC_DIR)
os.environ["SECRET_KEY"] = settings.SECRET_KEY
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)
if not values.ValueClass._multiprocess:
    # pytest-django set Django up before this file was imported. On the first run in a data directory
    # the metrics directory did not exist then, so the settings left prometheus_client in single-process
    # mode. Series made from now on (every labelled one is made on first use) go to the shared files
    # that /api/metrics reads, as on every later run.
    values.ValueClass = values.MultiProcessValue()


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


def make_user(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if role:
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
