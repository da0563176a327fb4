"""Settings come from the environment; a bad value stops the process with a message naming it."""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_setting(name: str, **env: str) -> subprocess.CompletedProcess:
    code = f"from django.conf import settings; print(settings.{name})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "pod_gateway.settings", "SECRET_KEY": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_secret_key_is_generated_once_per_data_dir_and_kept_private(tmp_path):
    first = load_setting("SECRET_KEY", DATA_DIR=str(tmp_path))
    second = load_setting("SECRET_KEY", DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_secret_key_from_the_environment_wins(tmp_path):
    result = load_setting("SECRET_KEY", DATA_DIR=str(tmp_path), SECRET_KEY="from-env")
    assert result.stdout.strip() == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_malformed_values_stop_start_with_the_variable_named(tmp_path):
    for name, value in [("RATE_LIMIT_READ", "lots"), ("DEBUG", "maybe"), ("GENERATION_BACKEND", "dalle")]:
        result = load_setting("DEBUG", DATA_DIR=str(tmp_path), **{name: value})
        assert result.returncode != 0
        assert name in result.stderr
