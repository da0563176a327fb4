"""The data directory (`DATA_DIR`): made ready on disk before Django starts.

Settings only read: they use the secret key file when it exists, and let prometheus_client share
samples through files only when its directory exists. `prepare()` makes both and the directories the
gateway writes to. `make run`/`make serve` (pod_gateway.runner), a gunicorn worker (pod_gateway.wsgi)
and `manage.py db_worker` call it before they serve; it is plain Python (no Django) for that reason.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from environs import Env

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"
# Under DATA_DIR: collected static files (WhiteNoise warns on every request while it is missing), uploads
# and generated images, and django-ratelimit's file cache (admin login attempts) when there is no Redis.
SUBDIRECTORIES = ("static", "media", "cache/ratelimit")


def locate(env: Env | None = None) -> tuple[Path, Path]:
    """DATA_DIR and PROMETHEUS_MULTIPROC_DIR as settings read them (the environment, then `.env`).

    A process calls this to prepare the directory before it imports settings; settings call it too,
    so both agree. A blank value means the default, as everywhere in the settings.
    """
    if env is None:
        env = Env()
        env.read_env(PROJECT_DIR / ".env", recurse=False)
    data_dir = Path(env.str("DATA_DIR", "").strip() or PROJECT_DIR / "var").resolve()
    metrics_dir = Path(env.str("PROMETHEUS_MULTIPROC_DIR", "").strip() or data_dir / "prometheus")
    return data_dir, metrics_dir


def prepare(data_dir: Path | str, metrics_dir: Path | str | None = None) -> None:
    """Make DATA_DIR, its subdirectories, the metrics directory and (once) the secret key file.

    Safe to run from several processes at once: exactly one of them writes the key, and no process
    ever sees the file half-written.
    """
    data_dir = Path(data_dir)
    for path in (data_dir, *(data_dir / sub for sub in SUBDIRECTORIES)):
        path.mkdir(parents=True, exist_ok=True)
    Path(metrics_dir or data_dir / "prometheus").mkdir(parents=True, exist_ok=True)
    key_file = data_dir / SECRET_KEY_FILE
    if not key_file.exists():
        _write_secret_key(key_file)


def read_secret_key(data_dir: Path | str) -> str | None:
    """The key kept in DATA_DIR, or None while there is none (read only: `prepare()` makes it)."""
    path = Path(data_dir) / SECRET_KEY_FILE
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not key:
        raise ValueError(f"{path} is empty: delete it or set SECRET_KEY")
    return key


def _write_secret_key(path: Path) -> None:
    """Write a new random key to `path` unless another process got there first."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        # A hard link appears complete and atomically, and fails if the name exists: one writer wins.
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
