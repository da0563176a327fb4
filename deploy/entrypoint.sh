#!/bin/sh
# The container's entry point: `web` (migrate, collect static files, then gunicorn), `worker` (the task
# worker, which also delivers webhooks), or any other command (`python manage.py create_api_token …`).
set -eu
cd /app

case "${1:-web}" in
  web)
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    # The same server command as `make serve` (pod_gateway/runner.py); SIGTERM drains the requests in flight.
    exec python -m gunicorn pod_gateway.wsgi:application \
      --bind "${HOST:-0.0.0.0}:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-3}" --threads "${WEB_THREADS:-4}" \
      --graceful-timeout "${WEB_GRACEFUL_TIMEOUT:-30}" --no-control-socket
    ;;
  worker)
    # SIGTERM lets the task in progress finish or stop resumably (core/worker.py).
    exec python manage.py db_worker --no-reload --queue-name '*'
    ;;
  *)
    exec "$@"
    ;;
esac
