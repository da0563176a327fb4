"""Uploads of huge images: memory near the decoded size, duplicates refused before decoding, the decode budget.

Pillow allocates pixel buffers with malloc, out of tracemalloc's sight, so memory is measured as the peak
RSS (VmHWM) of a fresh process that makes the uploads through the whole API stack, on the test database
(benchmarks.bench_uploads.upload_child). A flat 8192x8192 RGBA PNG is about 260 KB on disk and 256 MB decoded.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from PIL import Image as PILImage
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from benchmarks.bench_uploads import decoded_rgba_bytes, flat_png, run_upload_child
from core.actors import Actor, Via
from core.checks import config_issues
from core.errors import BusyError
from images.generation import generation_create
from images.intake import DecodeBudget, decode_cost, open_image
from images.models import GenerationStatus, Image
from images.tasks import generation_run
from images.validation import GenerateInputSerializer
from tests.servers import database_url
from webhooks.models import WebhookEvent

BIG = (8192, 8192)
DECODED = decoded_rgba_bytes(BIG)
MB = 2**20


# The uploading process reads what this one committed.
in_another_process = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def big_pngs(tmp_path_factory) -> list[Path]:
    """Two different 8192x8192 RGBA PNGs (each test's database starts without them)."""
    folder = tmp_path_factory.mktemp("big")
    return [flat_png(folder / f"big-{n}.png", BIG, (30 * n, 120, 200, 180)) for n in (1, 2)]


@pytest.fixture
def token(db) -> str:
    # A superuser: the roles' groups, made by a migration, are gone after an earlier transactional test.
    return Token.objects.create(user=User.objects.create_superuser("uploader", password="pw-uploader")).key


@pytest.fixture
def api(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def child_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The uploading process' environment: this test's database and media directory (DATA_DIR/media)."""
    return {
        "DATABASE_URL": database_url(),
        "DATA_DIR": str(tmp_path),
        "RATE_LIMIT_GENERATION": "1000/h",
        **settings,
    }


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def upload(api: APIClient, data: bytes, version: str = "v1", name: str = "design.png"):
    file = io.BytesIO(data)
    file.name = name
    return api.post(f"/api/{version}/images", {"file": file}, format="multipart")


# --- Memory ---------------------------------------------------------------------------------------

@in_another_process
def test_an_8192_rgba_upload_peaks_near_its_decoded_size(tmp_path, token, big_pngs):
    big = big_pngs[0]

    [result] = run_upload_child({"token": token, "uploads": [str(big)]}, child_env(tmp_path))

    assert result["status"] == 201, result
    # It was decoded (the measurement sees it) and took no second full-size copy.
    assert 0.9 * DECODED <= result["peak_growth"] <= 1.3 * DECODED, f"{result['peak_growth'] / MB:.0f} MB"
    image = Image.objects.get(id=result["image_id"])
    assert (image.width, image.height, image.color_mode) == (8192, 8192, "RGBA")
    with image.thumbnail.open("rb") as fh, PILImage.open(fh) as thumbnail:
        assert thumbnail.size == (512, 512)
        # The colour at 180/255 alpha, over white.
        assert thumbnail.getpixel((256, 256)) == pytest.approx((96, 160, 216), abs=3)


@in_another_process
def test_a_duplicate_resend_answers_409_without_decoding(tmp_path, token, make_image, big_pngs):
    big = big_pngs[0]
    sha256 = hashlib.sha256(big.read_bytes()).hexdigest()
    first = make_image()
    Image.objects.filter(id=first.id).update(sha256=sha256)

    [result] = run_upload_child({"token": token, "uploads": [str(big)]}, child_env(tmp_path))

    assert (result["status"], result["code"]) == (409, "CONFLICT"), result
    # Decoding would have taken 256 MB; reading and hashing 260 KB takes next to nothing.
    assert result["peak_growth"] < 0.05 * DECODED, f"{result['peak_growth'] / MB:.0f} MB"
    assert list(Image.objects.filter(sha256=sha256).values_list("id", flat=True)) == [first.id]


# --- The decode budget ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v1", "v2"])
def test_an_upload_over_the_decode_budget_is_503_with_retry_after_and_stores_nothing(
    api, settings, tmp_path, version
):
    settings.IMAGE_DECODE_BUDGET_BYTES = 1 * MB
    png = flat_png(tmp_path / "rgba.png", (1024, 1024), (10, 20, 30, 40)).read_bytes()  # 4 MB decoded
    events = WebhookEvent.objects.count()

    response = upload(api, png, version)

    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1
    assert Image.objects.count() == 0
    assert WebhookEvent.objects.count() == events
    assert stored_files(Path(settings.MEDIA_ROOT)) == []


@in_another_process
def test_two_big_uploads_with_a_budget_for_one_are_decoded_one_after_the_other(tmp_path, token, big_pngs):
    uploads = [str(path) for path in big_pngs]
    env = child_env(tmp_path, IMAGE_DECODE_BUDGET_MB="300", IMAGE_DECODE_WAIT_SECONDS="120")

    results = run_upload_child({"token": token, "uploads": uploads, "together": True}, env)

    assert [result["status"] for result in results] == [201, 201], results
    peak = results[0]["peak_growth"]
    assert peak <= 1.3 * DECODED, f"{peak / MB:.0f} MB: both were decoded at once"


@in_another_process
def test_with_no_wait_the_second_of_two_big_uploads_is_refused_with_503(tmp_path, token, big_pngs):
    uploads = [str(path) for path in big_pngs]
    env = child_env(tmp_path, IMAGE_DECODE_BUDGET_MB="300", IMAGE_DECODE_WAIT_SECONDS="0")

    results = run_upload_child({"token": token, "uploads": uploads, "together": True}, env)

    assert sorted(result["status"] for result in results) == [201, 503], results
    refused = next(result for result in results if result["status"] == 503)
    assert refused["code"] == "SERVICE_UNAVAILABLE" and int(refused["retry_after"]) >= 1
    assert results[0]["peak_growth"] <= 1.3 * DECODED
    accepted = next(result for result in results if result["status"] == 201)
    assert list(Image.objects.filter(created_by__username="uploader", width=8192).values_list("id", flat=True)) \
        == [accepted["image_id"]]


def test_a_jpeg_is_budgeted_at_the_reduced_scale_it_is_decoded_at(api, settings, tmp_path):
    settings.IMAGE_DECODE_BUDGET_BYTES = 4 * MB
    grey = PILImage.new("L", (4096, 4096), 128)  # 16 MB decoded in full; its thumbnail decodes it at 1/4
    jpeg, png = io.BytesIO(), io.BytesIO()
    grey.save(jpeg, "JPEG")
    grey.save(png, "PNG")

    assert upload(api, jpeg.getvalue(), name="grey.jpg").status_code == 201
    assert upload(api, png.getvalue(), name="grey.png").status_code == 503


def test_the_budget_makes_a_decode_wait_for_the_one_in_progress_then_gives_up(settings):
    budget = DecodeBudget()
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with budget.reserve(60 * MB, capacity=100 * MB, timeout=0):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert holding.wait(10)
    with pytest.raises(BusyError) as refused:
        with budget.reserve(60 * MB, capacity=100 * MB, timeout=0.2):
            pass
    assert refused.value.temporary and refused.value.retry_after == 1
    with budget.reserve(40 * MB, capacity=100 * MB, timeout=0):
        assert budget.in_use == 100 * MB
    release.set()
    thread.join(10)
    with budget.reserve(100 * MB, capacity=100 * MB, timeout=0):
        assert budget.in_use == 100 * MB
    assert budget.in_use == 0
    with pytest.raises(BusyError) as never:
        with budget.reserve(101 * MB, capacity=100 * MB, timeout=30):
            pass
    assert never.value.temporary is False


def test_import_images_skips_an_image_too_large_for_the_budget(db, settings, tmp_path, capsys):
    settings.IMAGE_DECODE_BUDGET_BYTES = 1 * MB
    folder = tmp_path / "in"
    folder.mkdir()
    flat_png(folder / "big.png", (1024, 1024), (1, 2, 3, 255))
    flat_png(folder / "small.png", (200, 200), (1, 2, 3, 255))

    call_command("import_images", str(folder))

    out = capsys.readouterr().out
    assert "skipped big.png: Decoding this image needs" in out
    assert Image.objects.count() == 1


def test_a_generated_image_too_large_for_the_budget_fails_its_slot(db, settings):
    settings.IMAGE_DECODE_BUDGET_BYTES = MB // 2  # the procedural 512x640 picture needs 1.3 MB decoded
    serializer = GenerateInputSerializer(data={"prompt": "retro sunset cat", "width": 512, "height": 640})
    serializer.is_valid(raise_exception=True)
    generation = generation_create(data=serializer.validated_data, actor=Actor(None, Via.API))

    generation_run.call(generation_id=generation.id)

    generation.refresh_from_db()
    assert generation.status == GenerationStatus.FAILED
    assert "Unusable image: Decoding this image needs" in generation.error
    assert Image.objects.count() == 0


def test_check_config_warns_of_a_budget_below_the_largest_image_or_above_the_host_memory(settings):
    settings.IMAGE_DECODE_BUDGET_BYTES = 100 * MB
    small = [issue for issue in config_issues(probe=False) if issue.setting == "IMAGE_DECODE_BUDGET_MB"]
    assert [(issue.level, issue.code) for issue in small] == [("warning", "W010")]
    assert "392 MB the largest accepted image" in small[0].message

    settings.IMAGE_DECODE_BUDGET_BYTES = 400 * MB
    assert not [issue for issue in config_issues(probe=False) if issue.setting == "IMAGE_DECODE_BUDGET_MB"]

    settings.IMAGE_DECODE_BUDGET_BYTES = 1 << 50  # a petabyte
    huge = [issue.code for issue in config_issues(probe=False) if issue.setting == "IMAGE_DECODE_BUDGET_MB"]
    assert huge == ["W011"]


@pytest.mark.parametrize(("subsampling", "planes"), [(0, 3.0), (1, 2.0), (2, 1.5)])
def test_a_progressive_jpeg_is_budgeted_for_the_coefficients_of_its_sampled_components(subsampling, planes):
    raw = io.BytesIO()
    PILImage.new("RGB", (2048, 2048), (200, 100, 50)).save(raw, "JPEG", progressive=True, subsampling=subsampling)
    raw.seek(0)
    with open_image(raw) as im:
        coefficients = decode_cost(im, full_size=(2048, 2048)) - decode_cost(im, full_size=(0, 0))
    assert coefficients == 2048 * 2048 * 2 * planes  # 4:4:4, 4:2:2, 4:2:0: two bytes per coefficient
