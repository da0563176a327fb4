"""`make run` / `make serve`: prepare the data directory, then run the web server and a task worker.

The data directory (and the secret key file in it) is made before Django is set up here, so that
this process and both children read the same key and share one metrics directory.

Both children run until Ctrl+C or SIGTERM, which is passed on to them so a task in progress is
finished (or left resumable) and gunicorn drains its requests. If either child dies, the other is
stopped too and the exit status says so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import django
from django.contrib.auth import get_user_model
from django.core.management import call_command
from environs import Env

from core import datadir

# What the runner itself reads (the settings read the rest): the environment, then `.env`.
env = Env()
env.read_env(Path(__file__).resolve().parent.parent / ".env", recurse=False)


def prepare_data_dir() -> None:
    """Make the data directory before Django (and prometheus_client) start in this process."""
    data_dir, metrics_dir = datadir.locate(env)
    # Samples of processes from an earlier run would be added to this run's counters: start empty.
    shutil.rmtree(metrics_dir, ignore_errors=True)
    datadir.prepare(data_dir, metrics_dir)


def prepare() -> None:
    """Prepare the data directory, migrate, collect static files and make sure the admin user exists."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
    prepare_data_dir()
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    username = env.str("POD_ADMIN_USERNAME", "").strip() or "admin"
    password = env.str("POD_ADMIN_PASSWORD", "")
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    if user is None:
        generated = not password
        password = password or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = password if generated else "(from POD_ADMIN_PASSWORD)"
        print(f"Created superuser {username!r} with password: {shown}", flush=True)
    elif password and not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
        print(f"Updated the password of {username!r} from POD_ADMIN_PASSWORD", flush=True)


def main(mode: str) -> int:
    prepare()
    host = env.str("HOST", "").strip() or "127.0.0.1"
    port = env.str("PORT", "").strip() or "8000"
    workers = "1" if mode == "dev" else str(2 * (os.cpu_count() or 1) + 1)
    web = [
        sys.executable, "-m", "gunicorn", "pod_gateway.wsgi:application",
        "--bind", f"{host}:{port}", "--workers", workers, "--threads", "4",
        "--graceful-timeout", "30", "--no-control-socket",
    ]
    worker = [sys.executable, "manage.py", "db_worker", "--no-reload", "--queue-name", "*"]
    child_env = dict(os.environ)
    if mode == "serve":
        child_env["DEBUG"] = "false"
    # Own sessions: a terminal Ctrl+C reaches only this process, which passes one SIGTERM on.
    children = [subprocess.Popen(cmd, env=child_env, start_new_session=True) for cmd in (web, worker)]
    print(f"POD Gateway at http://{host}:{port}/admin/ (API under /api/v1/); Ctrl+C stops it.", flush=True)

    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while all(child.poll() is None for child in children):
        time.sleep(0.5)
    if not stopping:
        stop(signal.SIGTERM, None)
    for child in children:
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dev"))
