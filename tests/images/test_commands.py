"""Operator commands: what they print, what they change, and how they fail."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo
from rest_framework.authtoken.models import Token

from core.db.bulk import insert_rows
from images.models import Generation, Image, ImageStatus, ImageTransition

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run(*args, **options) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def run_failing(*args, **options) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue(), str(caught.value)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.fixture
def folder(tmp_path, settings):
    """A ComfyUI-like output folder with good files and one bad file of each kind."""
    settings.IMAGE_MAX_BYTES = 200_000
    settings.THUMBNAIL_SIZE = 32
    root = tmp_path / "output"
    root.mkdir()
    PILImage.new("RGB", (60, 80), "red").save(root / "ComfyUI_00001_.png")
    PILImage.new("RGB", (60, 80), "blue").save(root / "ComfyUI_00002_.jpg", "JPEG")
    (root / "ComfyUI_00003_.png").write_bytes((root / "ComfyUI_00001_.png").read_bytes())  # same bytes
    (root / "notes.txt").write_text("not a picture")
    noise = PILImage.effect_noise((120, 120), 60)
    noise.save(root / "whole.png")
    data = (root / "whole.png").read_bytes()
    (root / "whole.png").unlink()
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (root / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )
    (root / "huge.png").write_bytes(b"\x89PNG" + b"\0" * 200_000)
    sub = root / "sub"
    sub.mkdir()
    PILImage.new("RGB", (60, 80), "green").save(sub / "nested.png")
    return root


def test_import_images_imports_good_files_and_skips_each_bad_one_with_its_reason(folder):
    out = run("import_images", str(folder), "--prompt", "retro\ncat")
    lines = out.splitlines()
    imported = {line.split()[1] for line in lines if line.startswith("imported ")}
    assert imported == {"ComfyUI_00001_.png", "ComfyUI_00002_.jpg"}
    skipped = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("skipped ")}
    first = Image.objects.get(sha256=Image.objects.get(format="PNG").sha256)
    assert skipped["ComfyUI_00003_.png"].endswith(f"duplicate of {first.id}")
    assert "not a PNG or JPEG image" in skipped["notes.txt"]
    assert "corrupt or truncated" in skipped["truncated.png"]
    assert "decompression bomb" in skipped["bomb.png"]
    assert "too large" in skipped["huge.png"]
    assert lines[-1].startswith("Imported 2, skipped 5 (1 duplicate(s), 4 invalid) of 7 file(s)")
    assert set(Image.objects.values_list("status", "source", "prompt")) == {("pending", "imported", "retro cat")}


def test_import_images_twice_imports_nothing_new(folder):
    run("import_images", str(folder))
    again = run("import_images", str(folder), "--recursive")
    assert [line.split()[1] for line in again.splitlines() if line.startswith("imported ")] == ["sub/nested.png"]
    third = run("import_images", str(folder), "--recursive")
    assert "imported " not in third
    assert third.splitlines()[-1].startswith("Imported 0, skipped 8 (4 duplicate(s), 4 invalid)")
    assert Image.objects.count() == 3


def test_import_images_of_a_missing_directory_fails(tmp_path):
    _, error = run_failing("import_images", str(tmp_path / "nope"))
    assert "is not a directory" in error


@pytest.fixture
def pending(make_image):
    return [make_image() for _ in range(3)]


def test_approve_by_id_records_history_via_command(pending, reviewer):
    out = run("approve", pending[0].id, pending[1].id, "--note", "crisp", "--as", reviewer.username)
    assert f"approved {pending[0].id}" in out
    assert out.splitlines()[-1] == "Approved 2, skipped 0, failed 0 of 2"
    row = ImageTransition.objects.get(image=pending[0])
    assert (row.to_status, row.via, row.actor, row.note) == ("approved", "command", reviewer, "crisp")
    # Approving again is no failure: it already is.
    assert "skipped" in run("approve", pending[0].id)


def test_approve_all_pending_and_by_generation(make_image):
    generation = Generation.objects.create(prompt="p", backend="procedural", prompt_hash="1" * 64)
    mine = make_image(generation=generation, batch_index=0)
    other = make_image()
    out = run("approve", "--generation", generation.id)
    assert out.splitlines() == [f"approved {mine.id}", "Approved 1, skipped 0, failed 0 of 1"]
    assert Image.objects.get(id=other.id).status == ImageStatus.PENDING
    run("approve", "--all-pending")
    assert Image.objects.get(id=other.id).status == ImageStatus.APPROVED
    assert run("approve", "--all-pending").strip() == "No pending images to approve"
    assert ImageTransition.objects.get(image=other).actor_label == "system"


def test_approve_failures_exit_non_zero(make_image):
    published = make_image(status=ImageStatus.PUBLISHED)
    out, error = run_failing("approve", "img_missing", published.id)
    assert "failed img_missing: Image img_missing not found" in out
    assert f"skipped {published.id}: cannot approve an image that is published" in out
    assert error == "2 image(s) could not be approved"
    assert "exactly one" in run_failing("approve")[1]
    assert "not found" in run_failing("approve", "--generation", "gen_missing")[1]
    assert "User 'ghost' not found" in run_failing("approve", "--all-pending", "--as", "ghost")[1]


def test_reject_command_records_the_reason_and_keeps_the_file(pending):
    out = run("reject", pending[0].id, "--reason", "blurry")
    assert out.splitlines() == [f"rejected {pending[0].id}", "Rejected 1, skipped 0, failed 0 of 1"]
    row = ImageTransition.objects.get(image=pending[0])
    assert (row.to_status, row.note, row.via) == ("rejected", "blurry", "command")
    assert Path(Image.objects.get(id=pending[0].id).file.path).exists()
    _, error = run_failing("reject", "img_missing")
    assert error == "1 image(s) could not be rejected"


def test_prune_removes_only_long_rejected_images(make_image, django_capture_on_commit_callbacks):
    old, recent, old_pending = make_image(status=ImageStatus.REJECTED), make_image(), make_image()
    run("reject", recent.id)
    long_ago = timezone.now() - timedelta(days=31)
    # History is append-only (even in the database): the old rejection is written as it would have been then.
    insert_rows(ImageTransition, fields=["image_id", "from_status"], rows=[(old.id, "pending")],
                constants={"to_status": "rejected", "actor_label": "system", "via": "command", "created_at": long_ago})
    Image.objects.filter(id__in=[old.id, old_pending.id]).update(updated_at=long_ago)
    old_files = [Path(old.file.path)]

    dry = run("prune", "--dry-run")
    assert dry.splitlines() == [f"would remove {old.id}", dry.splitlines()[-1]]
    assert dry.splitlines()[-1].startswith("Would remove 1 image(s) rejected over 30 day(s) ago")
    assert Image.objects.filter(id=old.id).exists()

    with django_capture_on_commit_callbacks(execute=True):
        out = run("prune")
    assert out.splitlines()[0] == f"removed {old.id}"
    assert out.splitlines()[-1].startswith("Removed 1 image(s) rejected over 30 day(s) ago")
    assert set(Image.objects.values_list("id", flat=True)) == {recent.id, old_pending.id}
    assert not any(path.exists() for path in old_files)

    assert "Removed 1" in run("prune", "--older-than-days", "0")
    assert not Image.objects.filter(id=recent.id).exists()
    assert "0 or more" in run_failing("prune", "--older-than-days", "-1")[1]


def test_create_api_token_creates_user_role_and_prints_token_last(db):
    out = run("create_api_token", "alice", "--role", "reviewer")
    user = User.objects.get(username="alice")
    assert out.splitlines()[-1] == Token.objects.get(user=user).key
    assert list(user.groups.values_list("name", flat=True)) == ["reviewers"]
    assert not user.has_usable_password()
    assert "Created user alice" in out
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser
    again = run("create_api_token", "alice", "--role", "publisher")
    assert again.splitlines()[-1] == out.splitlines()[-1]
    assert set(user.groups.values_list("name", flat=True)) == {"reviewers", "publishers"}
    run("create_api_token", "root2", "--role", "admin")
    root = User.objects.get(username="root2")
    assert root.is_superuser and root.is_staff
    assert "Invalid username" in run_failing("create_api_token", "bad name!")[1]


def test_create_api_token_default_role_is_client(db):
    out = run("create_api_token", "bob")
    user = User.objects.get(username="bob")
    assert list(user.groups.values_list("name", flat=True)) == ["clients"]
    assert out.splitlines()[-1] == user.auth_token.key
    assert not user.is_staff
    run("create_api_token", "carol", "--role", "reviewer")
    again = run("create_api_token", "carol")
    assert again.splitlines()[-1] == User.objects.get(username="carol").auth_token.key
    assert list(User.objects.get(username="carol").groups.values_list("name", flat=True)) == ["reviewers"]


def test_optimize_images_command_resizes_and_reports_refused_images(tmp_path, make_image, settings):
    settings.THUMBNAIL_SIZE = 32
    image = make_image()
    out = run("optimize_images", image.id, "--width", "120", "--height", "150")
    assert out.splitlines() == [f"optimised {image.id}: 64x64 -> 120x120 PNG 300 DPI", "Optimised 1 of 1 image(s)"]
    published = make_image(status=ImageStatus.PUBLISHED)
    out, error = run_failing("optimize_images", published.id, "img_missing", "--width", "120", "--height", "150")
    assert f"failed {published.id}: Image {published.id}: cannot optimise an image that is published" in out
    assert "failed img_missing: Image img_missing not found" in out
    assert error == "2 image(s) could not be optimised"
    assert "--all-pending" in run_failing("optimize_images")[1]
    _, error = run_failing("optimize_images", image.id, "--width", "0")
    assert error == "1 image(s) could not be optimised"


def test_check_config_passes_with_defaults_and_fails_on_errors(settings):
    settings.PRINTIFY_API_KEY = ""
    out = run("check_config")
    assert "Configuration Validation Report" in out
    assert "✓ Configuration is valid" in out
    assert "⚠ [WARNING] PRINTIFY_API_KEY: Printify integration disabled" in out

    settings.GENERATION_BACKEND = "runpod"
    settings.RUNPOD_API_KEY = ""
    settings.RUNPOD_ENDPOINT_ID = "abc"
    settings.PUBLIC_BASE_URL = "ftp://files"
    out, error = run_failing("check_config")
    assert "✗ [ERROR] RUNPOD_API_KEY: required by GENERATION_BACKEND=runpod" in out
    assert "✗ [ERROR] PUBLIC_BASE_URL: 'ftp://files' is not an http(s) URL with a host" in out
    assert error == "Configuration has 2 error(s)"


def test_check_config_security_and_storage_findings(settings, tmp_path):
    settings.DEBUG = False
    settings.SECRET_KEY = "changeme"
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    settings.MEDIA_ROOT = not_a_dir / "media"
    out, _ = run_failing("check_config", "--no-create")
    assert "⚠ [WARNING] SECRET_KEY: weak (short, repetitive or a placeholder) with DEBUG off" in out
    assert "WEBHOOK_ALLOW_PRIVATE_URLS" in out
    assert f"MEDIA_ROOT: {not_a_dir} is not a directory" in out


def test_check_config_and_system_check_exit_codes(tmp_path):
    """Through manage.py, as an operator runs them: exit 1 on configuration errors."""
    env = {
        **os.environ, "DATA_DIR": str(tmp_path), "GENERATION_BACKEND": "comfyui", "COMFYUI_API_URL": "not a url",
    }
    env.pop("DATABASE_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    report = subprocess.run([*manage, "check_config"], env=env, capture_output=True, text=True, timeout=60)
    assert report.returncode == 1
    assert "COMFYUI_API_URL: 'not a url' is not an http(s) URL with a host" in report.stdout
    check = subprocess.run([*manage, "check"], env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 1
    assert "(pod_gateway.E002) COMFYUI_API_URL" in check.stderr
    env["COMFYUI_API_URL"] = "http://127.0.0.1:8188"
    ok = subprocess.run([*manage, "check_config"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "✓ Configuration is valid" in ok.stdout
    assert "PRINTIFY_API_KEY: Printify integration disabled" in ok.stdout
    # A gateway without Printify (export only) is a normal setup: no warning on every command.
    quiet = subprocess.run([*manage, "check"], env=env, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and "PRINTIFY" not in quiet.stderr + quiet.stdout


def test_import_images_takes_the_prompt_comfyui_or_a1111_embedded(tmp_path, settings):
    settings.THUMBNAIL_SIZE = 32
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"positive": ["6", 0], "negative": ["7", 0], "seed": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "retro sunset\ncat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
    }
    flux = {
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {"guider": ["22", 0], "noise": ["25", 0]}},
        "22": {"class_type": "BasicGuider", "inputs": {"conditioning": ["60", 0], "model": ["30", 0]}},
        "60": {"class_type": "FluxGuidance", "inputs": {"conditioning": ["6", 0], "guidance": 3.5}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "flux astronaut", "clip": ["11", 0]}},
    }
    for name, key, value in [
        ("comfy.png", "prompt", json.dumps(graph)),
        ("flux.png", "prompt", json.dumps(flux)),
        ("a1111.png", "parameters", "neon koi\nNegative prompt: ugly\nSteps: 20, Sampler: Euler"),
        ("plain.png", "Comment", "nothing useful"),
    ]:
        meta = PngInfo()
        meta.add_text(key, value)
        PILImage.new("RGB", (40, 40), (len(name) * 9, 10, 10)).save(tmp_path / name, pnginfo=meta)
    run("import_images", str(tmp_path))
    prompts = sorted(Image.objects.values_list("prompt", flat=True))
    assert prompts == ["", "flux astronaut", "neon koi", "retro sunset cat"]


def test_prune_orphans_removes_unreferenced_old_files_only(make_image, settings):
    kept = make_image()
    media = Path(settings.MEDIA_ROOT)
    old_orphan = media / "images" / "2025" / "01" / "img_gone.png"
    old_orphan.parent.mkdir(parents=True)
    old_orphan.write_bytes(b"left by a killed worker")
    two_hours_ago = (timezone.now() - timedelta(hours=2)).timestamp()
    os.utime(old_orphan, (two_hours_ago, two_hours_ago))
    os.utime(kept.file.path, (two_hours_ago, two_hours_ago))
    young_orphan = media / "thumbnails" / "2026" / "11" / "img_inflight.jpg"
    young_orphan.parent.mkdir(parents=True)
    young_orphan.write_bytes(b"intake still running")

    dry = run("prune", "--orphans", "--dry-run")
    assert "would remove orphaned file images/2025/01/img_gone.png" in dry
    assert "Would remove 1 orphaned file(s)" in dry
    assert old_orphan.exists()

    out = run("prune", "--orphans")
    assert "Removed 1 orphaned file(s)" in out
    assert not old_orphan.exists()
    assert young_orphan.exists() and Path(kept.file.path).exists()
