"""Progress of long commands: a tqdm bar on a terminal (a real pseudo-terminal here), plain lines elsewhere."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from django.core.management import call_command

from images.models import Generation, Image
from tests.conftest import png_bytes
from tests.servers import database_url

ROOT = Path(__file__).resolve().parents[2]


def write_pngs(directory: Path, count: int) -> None:
    directory.mkdir()
    for n in range(count):
        (directory / f"design{n}.png").write_bytes(png_bytes(color=(n * 40, 10, 10)))


def run_on_a_terminal(args: list[str], *, data_dir: Path, timeout: float = 120) -> str:
    """Run `manage.py ARGS` with stdin, stdout and stderr on a pseudo-terminal 100 columns wide; its output."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {**os.environ, "DATABASE_URL": database_url(), "DATA_DIR": str(data_dir), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdin=terminal, stdout=terminal, stderr=terminal,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the command exited and closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0, output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    return output.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
def test_import_images_draws_a_bar_on_a_terminal_with_the_results_above_it(tmp_path):
    write_pngs(tmp_path / "in", 3)
    output = run_on_a_terminal(["import_images", str(tmp_path / "in")], data_dir=tmp_path)
    assert "Importing: 100%" in output and "3/3" in output, output
    assert "Reading: 100%" in output
    assert "\r" in output.replace("\r\n", "")  # the bar redraws itself in place
    for n in range(3):
        assert f"imported design{n}.png -> img_" in output
    assert "Imported 3, skipped 0" in output
    assert Image.objects.count() == 3


@pytest.mark.django_db
def test_import_images_prints_plain_lines_when_not_on_a_terminal(tmp_path):
    write_pngs(tmp_path / "in", 3)
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(tmp_path / "in"), stdout=out, stderr=err)
    assert "\r" not in out.getvalue() + err.getvalue()
    assert "%|" not in out.getvalue() + err.getvalue()
    lines = out.getvalue().splitlines()
    assert [line.split(" -> ")[0] for line in lines[:3]] == [f"imported design{n}.png" for n in range(3)]
    assert lines[3].startswith("Imported 3, skipped 0")


@pytest.mark.django_db(transaction=True)
def test_generate_wait_draws_a_bar_of_images_on_a_terminal(tmp_path):
    output = run_on_a_terminal(
        ["generate", "retro sunset cat", "--batch-size", "2", "--width", "512", "--height", "512",
         "--backend", "procedural", "--wait"],
        data_dir=tmp_path,
    )
    generation = Generation.objects.get()
    assert f"Generating {generation.id}: 100%" in output and "2/2" in output, output
    assert "completed" in output


@pytest.mark.django_db(transaction=True)
def test_generate_wait_says_what_it_waits_for_in_plain_lines_off_a_terminal():
    out, err = io.StringIO(), io.StringIO()
    call_command("generate", "retro sunset cat", "--batch-size", "2", "--width", "512", "--height", "512",
                 "--backend", "procedural", "--wait", stdout=out, stderr=err)
    generation = Generation.objects.get()
    lines = err.getvalue().splitlines()
    assert lines[0] == f"Generating {generation.id}: 0/2 queued"
    assert f"Generating {generation.id}: 2/2 completed" in lines
    assert "\r" not in err.getvalue()
    # stdout stays what scripts read: the generation id, then the image ids.
    assert out.getvalue().split()[0] == generation.id and len(out.getvalue().split()) == 3


@pytest.mark.django_db
def test_redeliver_webhooks_reports_each_day_it_went_through_off_a_terminal():
    out, err = io.StringIO(), io.StringIO()
    call_command("redeliver_webhooks", "--failed", stdout=out, stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0] == "Redelivering: 1/15 0 queued" and lines[-1] == "Redelivering: 15/15 0 queued"
    assert "Queued 0 failed deliveries again" in out.getvalue()
