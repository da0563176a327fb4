"""Uploads of huge images: peak memory of one 8192x8192 RGBA upload against its decoded size, and the cost of
re-sending the same bytes (answered 409 before anything is decoded) against the first upload.

Each upload is measured in a fresh process through the whole API stack (Django's test client): the peak RSS
(VmHWM) growth over the upload, with glibc's mmap threshold fixed so that freed pixel buffers go back to the
system at once and an earlier decode cannot hide a later one's memory.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

from benchmarks import figure

MEMORY_RATIO_LIMIT = 1.3
DUPLICATE_RATIO_LIMIT = 0.05
SIZE = (8192, 8192)
# A fixed threshold turns off glibc's dynamic one, under which freed 16 MB pixel blocks would stay in the heap.
CHILD_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def flat_png(path: Path, size: tuple[int, int], rgba: tuple[int, int, int, int]) -> Path:
    """An RGBA PNG of one colour, written a row at a time: 8192x8192 is about 260 KB on disk, 256 MB decoded.

    Written without Pillow, which would need the whole decoded image in memory to encode it.
    """
    width, height = size
    row = b"\x00" + bytes(rgba) * width  # filter type 0, then the pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA, no interlace
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def decoded_rgba_bytes(size: tuple[int, int]) -> int:
    return size[0] * size[1] * 4


# --- The measuring process ------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak() -> int:
    """Reset the peak RSS (Linux: "5" sets VmHWM to the current RSS) and return the current RSS in bytes."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kb("VmRSS") * 1024


def _peak() -> int:
    return _status_kb("VmHWM") * 1024


def upload_child(plan: dict) -> dict:
    """Run `plan` in this (fresh) process: a warm-up upload, then the uploads named, one by one or together.

    plan: {"token", "uploads": [path, ...], "together": bool}. Returns, per upload, its
    status, error code, Retry-After and seconds, and the peak RSS growth over all of them (or each of them).
    """
    import threading

    import django

    django.setup()
    from django.test import Client

    def post(path: str) -> dict:
        client = Client(HTTP_AUTHORIZATION=f"Token {plan['token']}")
        start = time.perf_counter()
        with open(path, "rb") as fh:
            response = client.post("/api/v1/images", {"file": fh, "prompt": "large upload"})
        body = response.json()
        return {
            "status": response.status_code,
            "code": body.get("code"),
            "retry_after": response.headers.get("Retry-After"),
            "image_id": body.get("id"),
            "seconds": time.perf_counter() - start,
        }

    # Imports, the database connection and Pillow's plugins, before measuring: a small upload of its own.
    warm_path = Path(plan["uploads"][0]).with_name(f"warm-{os.getpid()}-{time.time_ns()}.png")
    warm = post(str(flat_png(warm_path, (64, 64), (*os.urandom(3), 255))))
    warm_path.unlink()
    if warm["status"] != 201:
        raise RuntimeError(f"warm-up upload answered {warm}")
    results = []
    if plan.get("together"):
        barrier = threading.Barrier(len(plan["uploads"]))
        answers: dict[int, dict] = {}

        def run(index: int, path: str) -> None:
            barrier.wait()
            answers[index] = post(path)

        threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(plan["uploads"])]
        before = _reset_peak()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak_growth = _peak() - before
        results = [answers[i] for i in range(len(threads))]
        for result in results:
            result["peak_growth"] = peak_growth
    else:
        for path in plan["uploads"]:
            before = _reset_peak()
            result = post(path)
            result["peak_growth"] = _peak() - before
            results.append(result)
    return {"results": results}


def run_upload_child(plan: dict, env: dict[str, str], timeout: float = 180) -> list[dict]:
    """`upload_child(plan)` in a fresh Python process with `env` added; its results."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_uploads", json.dumps(plan)],
        capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "pod_gateway.settings", **CHILD_MALLOC, **env},
    )
    if out.returncode != 0:
        raise RuntimeError(f"upload process failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["results"]


# --- The benchmark --------------------------------------------------------------------------------

def run() -> list[str]:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from images.models import Image
    from webhooks.models import WebhookEvent

    work = Path(settings.DATA_DIR) / "bench-uploads"
    work.mkdir(exist_ok=True)
    big = flat_png(work / "big.png", SIZE, (30, 120, 200, 180))
    user, _ = User.objects.get_or_create(username="bench-uploads")
    user.groups.add(Group.objects.get(name="clients"))
    token, _ = Token.objects.get_or_create(user=user)
    env = {"RATE_LIMIT_GENERATION": "1000/h"}  # DATA_DIR is inherited from the benchmark runner
    if not os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{settings.DATABASES['default']['NAME']}"
    try:
        first = run_upload_child({"token": token.key, "uploads": [str(big)]}, env)[0]
        again = run_upload_child({"token": token.key, "uploads": [str(big)]}, env)[0]
    finally:
        ids = list(Image.objects.filter(created_by=user).values_list("id", flat=True))
        Image.objects.filter(id__in=ids).delete()
        WebhookEvent.objects.filter(event_type="image.created", data__image_id__in=ids).delete()
        user.delete()
    if first["status"] != 201 or again["status"] != 409:
        raise RuntimeError(f"expected 201 then 409, got {first} and {again}")
    decoded = decoded_rgba_bytes(SIZE)
    return [
        figure(
            f"upload peak memory {SIZE[0]}x{SIZE[1]} RGBA PNG ({big.stat().st_size / 1024:.0f} KB)",
            first["peak_growth"] / decoded, MEMORY_RATIO_LIMIT,
            detail=f"the decoded RGBA size ({first['peak_growth'] / 2**20:.0f} MB over {decoded / 2**20:.0f} MB)",
        ),
        figure(
            "duplicate re-send (409) vs the first upload", again["seconds"] / first["seconds"], DUPLICATE_RATIO_LIMIT,
            detail=f"({again['seconds'] * 1000:.0f} ms vs {first['seconds'] * 1000:.0f} ms, "
            f"{again['peak_growth'] / 2**20:.0f} MB peak growth)",
        ),
    ]


if __name__ == "__main__":
    print(json.dumps(upload_child(json.loads(sys.argv[1]))))
