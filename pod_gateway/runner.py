"""`make run` / `make serve`: prepare the data directory, then run the web server and a task worker.

`python -m pod_gateway.runner dev|serve` runs both (dev: one web worker process); `… runner web` runs
only the web server of `serve` (no migration), for deployments that run the task worker on its own.

The data directory (and the secret key file in it) is made before Django is set up here, so that
this process and both children read the same key and share one metrics directory.

The web server is gunicorn with its asyncio ASGI worker (`pod_gateway.server`): one worker process for
`make run`, WEB_WORKERS for `make serve`. Both children run until Ctrl+C or SIGTERM, which is passed on
to them so gunicorn answers the requests it accepted and the task worker finishes its task or hands it
back to the queue. The exit status is 0 after a requested stop; if a child dies on its own, the other
is stopped too and the status is 1, so a supervisor that restarts on failure restarts the gateway.
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
from django.conf import settings
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


def web_command(mode: str, host: str, port: str) -> list[str]:
    """gunicorn with the gateway's ASGI worker, its limits and timeouts (see pod_gateway.server)."""
    workers = 1 if mode == "dev" else settings.WEB_WORKERS
    return [
        sys.executable, "-m", "gunicorn", "pod_gateway.asgi:application", "--config", "python:pod_gateway.server",
        "--bind", f"{host}:{port}", "--workers", str(workers),
        "--graceful-timeout", f"{settings.SERVER_GRACEFUL_TIMEOUT_SECONDS:g}",
        # A worker whose event loop has not beaten for this long is restarted; longer than the body
        # deadline, so the deadline (answered 408) and not gunicorn's idle-read limit ends a slow body.
        "--timeout", str(int(settings.SERVER_BODY_TIMEOUT_SECONDS) + 30),
        "--keep-alive", "5",
        # Scheme headers (X-Forwarded-Proto) only from the proxies trusted with X-Forwarded-For.
        "--forwarded-allow-ips", ",".join(settings.TRUSTED_PROXIES),
        "--no-control-socket",
    ]


def main(mode: str) -> int:
    host = env.str("HOST", "").strip() or "127.0.0.1"
    port = env.str("PORT", "").strip() or "8000"
    if mode == "web":
        # The web server alone, as `make serve` runs it (a container or systemd unit next to a separate
        # `manage.py db_worker`): this process becomes gunicorn's master, so signals reach it directly.
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
        data_dir, metrics_dir = datadir.locate(env)
        datadir.prepare(data_dir, metrics_dir)
        # Live gauges of web workers that were killed without gunicorn seeing them go (a container or
        # unit stopped hard): none of them is alive now. Counters stay; a task worker may share the folder.
        for stale in Path(metrics_dir).glob("gauge_live*.db"):
            stale.unlink(missing_ok=True)
        django.setup()
        os.environ["SERVER_HEADER_TIMEOUT_SECONDS"] = f"{settings.SERVER_HEADER_TIMEOUT_SECONDS:g}"
        os.environ["DEBUG"] = "false"  # the production shape, whatever the unit's environment says
        command = web_command("serve", host, port)
        os.execv(command[0], command)
    prepare()
    worker = [sys.executable, "manage.py", "db_worker", "--no-reload", "--queue-name", "*"]
    child_env = dict(os.environ, SERVER_HEADER_TIMEOUT_SECONDS=f"{settings.SERVER_HEADER_TIMEOUT_SECONDS:g}")
    if mode == "serve":
        child_env["DEBUG"] = "false"
    # Own sessions: a terminal Ctrl+C reaches only this process, which passes one SIGTERM on.
    children = [
        subprocess.Popen(cmd, env=child_env, start_new_session=True) for cmd in (web_command(mode, host, port), worker)
    ]
    print(f"POD Gateway at http://{host}:{port}/admin/ (API under /api/v1/); Ctrl+C stops it.", flush=True)

    # Set by the handler and read by the loop below: a stop was asked for, so children ending is expected.
    requested: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: requested.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _frame: requested.append(signum))
    while not requested and all(child.poll() is None for child in children):
        time.sleep(0.2)
    if requested:
        print("Stopping: the web server answers the requests it accepted, the worker hands back or ends its task",
              flush=True)
    else:
        died = next(child for child in children if child.poll() is not None)
        print(f"{'The web server' if died is children[0] else 'The task worker'} exited on its own "
              f"(status {died.returncode}); stopping the rest", file=sys.stderr, flush=True)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    grace = max(settings.SERVER_GRACEFUL_TIMEOUT_SECONDS, settings.WORKER_STOP_GRACE_SECONDS) + 10
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0 if requested else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "dev"))
