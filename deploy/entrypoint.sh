#!/bin/sh
# The container's entry point: `web` (migrate, collect static files, then the web server), `worker` (the task
# worker, which also delivers webhooks), or any other command (`python manage.py create_api_token …`).
set -eu
cd /app

case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    # The web server of `make serve` alone (pod_gateway/runner.py: gunicorn's ASGI worker, WEB_WORKERS
    # processes, on HOST:PORT); it becomes PID 1's process, so SIGTERM drains the accepted requests.
    exec python -m pod_gateway.runner web
    ;;
  worker)
    # SIGTERM lets the task in progress finish or stop resumably (core/worker.py).
    exec python manage.py db_worker --no-reload --queue-name '*'
    ;;
  *)
    exec "$@"
    ;;
esac
