#!/usr/bin/env bash
# `make image-test`: build the container image, start web + worker from it against this machine's
# PostgreSQL and Redis, and check that /api/ready answers 200 (database, cache, worker heartbeat).
#
# Exit 0: passed. Exit 77: cannot run here (the reason is printed). Anything else: failed.
# Settings (environment): IMAGE_TEST_PORT (8105); IMAGE_TEST_DATABASE_URL (default: a new database
# pod_image_test_<pid> on postgres@127.0.0.1:5432, dropped afterwards; IMAGE_TEST_DROP_DATABASE=1 drops a given
# one too); IMAGE_TEST_REDIS_URL (redis://127.0.0.1:6379/5); BASE_IMAGE (default: the debootstrap base of
# deploy/base-image.sh, cached);
# PIP_INDEX_URL / PIP_EXTRA_INDEX_URL / PIP_CERT (default: this host's pip configuration; http(s) indexes only).
#
# No image registry is reachable here, so the base is a local debootstrap image; the containers run with
# the runc runtime, host networking and the lowered ulimits this machine allows.
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything runs inside main, so bash has read the whole script before it starts (an edit to the file
# while a run is going on cannot change what that run does).
main() {

skip() { echo "image-test skipped: $*"; exit 77; }
command -v podman >/dev/null || skip "podman is not installed (apt-get install podman runc)"
command -v runc >/dev/null || skip "the runc runtime is not installed (apt-get install runc)"

port="${IMAGE_TEST_PORT:-8105}"
# A database given with IMAGE_TEST_DROP_DATABASE=1, or the one made here, is dropped afterwards.
drop_database="${IMAGE_TEST_DROP_DATABASE:-}"
database_url="${IMAGE_TEST_DATABASE_URL:-}"
if [[ -z "$database_url" ]]; then
  database_url="postgres://postgres@127.0.0.1:5432/pod_image_test_$$"
  drop_database=1
fi
redis_url="${IMAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379/5}"
reachable() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
db_address="$(python3 -c 'import sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); print(u.hostname, u.port or 5432)' "$database_url")"
redis_address="$(python3 -c 'import sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); print(u.hostname, u.port or 6379)' "$redis_url")"
reachable $db_address || skip "no PostgreSQL at ${db_address/ /:} (the containers use the machine's database)"
reachable $redis_address || skip "no Redis at ${redis_address/ /:}"
# A tag of this run's own: concurrent runs (from other checkouts) never start each other's image.
image="localhost/pod-gateway:image-test-$$"
cache_tag="localhost/pod-gateway:image-test"
run=(podman --runtime runc)
limits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if [[ -z "${BASE_IMAGE:-}" ]]; then
  if ! podman image exists localhost/pod-gateway-base:bookworm; then
    command -v debootstrap >/dev/null \
      || skip "no BASE_IMAGE given and debootstrap is not installed (apt-get install debootstrap)"
  fi
  BASE_IMAGE="$(deploy/base-image.sh)"
fi

# The index this host's pip uses; file:// indexes are not visible inside the build, so only http(s) ones.
pip=(python3 -m pip)
[[ -x .venv/bin/pip ]] && pip=(.venv/bin/pip)
# `pip config list` merges every configuration file (global, user, site) and PIP_* variables.
pip_setting() {
  "${pip[@]}" config list 2>/dev/null | sed -nE "s/^(global|install|:env:)\.$1='?([^']*)'?$/\2/p" | tail -n1 || true
}
http_only() { tr ' ' '\n' | grep -E '^https?://' | paste -sd' ' || true; }
index_url="${PIP_INDEX_URL:-$(pip_setting index-url | http_only)}"
extra_index_url="${PIP_EXTRA_INDEX_URL:-$(pip_setting extra-index-url | http_only)}"
# The CA bundle pip trusts here (a TLS-intercepting proxy's CA may be in it), handed in as a build secret.
cert="${PIP_CERT:-$(pip_setting cert)}"
secret=()
[[ -n "$cert" && -r "$cert" ]] && secret=(--secret "id=pip-ca,src=$cert")

echo "== build $image on $BASE_IMAGE (index: ${index_url:-PyPI}${extra_index_url:+, extra: $extra_index_url})"
"${run[@]}" build --network host "${limits[@]}" -f deploy/Dockerfile -t "$image" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" "${secret[@]}" \
  --build-arg PIP_INDEX_URL="$index_url" --build-arg PIP_EXTRA_INDEX_URL="$extra_index_url" . >&2

tag="pod-image-test-$$"
volume="$tag-data"
cleanup() {
  status=$?
  if [[ $status -ne 0 && $status -ne 77 ]]; then
    for name in "$tag-web" "$tag-worker"; do
      echo "== logs of $name" >&2
      podman logs --tail 60 "$name" >&2 2>&1 || true
    done
  fi
  podman rm -f -t 5 "$tag-worker" "$tag-web" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  if [[ -n "$drop_database" ]]; then
    database drop >/dev/null 2>&1 || true
  fi
  # This run's image becomes `image-test` and keeps its layers, the build cache of the next run (removing
  # it would take its untagged parent layers with it); the image that held the name before goes.
  previous="$(podman image inspect -f '{{.Id}}' "$cache_tag" 2>/dev/null || true)"
  if podman tag "$image" "$cache_tag" >/dev/null 2>&1; then
    podman untag "$image" "$image" >/dev/null 2>&1 || true
    current="$(podman image inspect -f '{{.Id}}' "$cache_tag" 2>/dev/null || true)"
    if [[ -n "$previous" && "$previous" != "$current" ]]; then
      podman rmi "$previous" >/dev/null 2>&1 || true
    fi
  fi
}
trap cleanup EXIT

common=(--network host "${limits[@]}" -v "$volume:/data"
        -e DATABASE_URL="$database_url" -e REDIS_URL="$redis_url"
        -e SECRET_KEY="image-test-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        -e HOST=127.0.0.1 -e PORT="$port" -e WEB_WORKERS=2
        # A production-like host list: the health checks must name an allowed host, not the bind address.
        -e ALLOWED_HOSTS=pod.example.test)

echo "== the image: runs as a non-root user, carries no compiler and no pip"
uid="$("${run[@]}" run --rm "${limits[@]}" "$image" id -u)"
[[ "$uid" != 0 ]] || { echo "FAIL: the image runs as root"; exit 1; }
tools="$("${run[@]}" run --rm "${limits[@]}" "$image" sh -c 'for t in gcc cc make pip pip3; do command -v $t; done; true')"
[[ -z "$tools" ]] || { echo "FAIL: build tools in the final image: $tools"; exit 1; }

# `database create|drop`: with the image's own psycopg, so the host needs no PostgreSQL client.
database() {
  # No data volume here: at clean-up this runs after the volume is gone, and must not make it again.
  "${run[@]}" run --rm --network host "${limits[@]}" "$image" python -c '
import sys, psycopg
from psycopg import sql
from urllib.parse import urlsplit
url = urlsplit(sys.argv[2])
name = sql.Identifier(url.path.lstrip("/"))
with psycopg.connect(url._replace(path="/postgres").geturl(), autocommit=True) as conn:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [url.path.lstrip("/")]).fetchone()
    if sys.argv[1] == "create" and not exists:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
    elif sys.argv[1] == "drop" and exists:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(name))
' "$1" "$database_url"
}
echo "== create the database if it is missing"
database create

probe() { "${run[@]}" exec "$tag-web" python deploy/probe.py "http://127.0.0.1:$port$1" 2>/dev/null; }
wait_for() {
  for _ in $(seq 1 "$2"); do
    probe "$1" && return 0
    podman container inspect -f '{{.State.Running}}' "$tag-web" 2>/dev/null | grep -q true || return 1
    sleep 1
  done
  return 1
}

ready_body() {
  podman exec "$tag-web" python -c "import urllib.request as u
request = u.Request('http://127.0.0.1:$port/api/ready', headers={'Host': 'pod.example.test'})
try: print(u.urlopen(request, timeout=5).read().decode())
except Exception as e: print(e.read().decode() if hasattr(e, 'read') else e)"
}

echo "== start web (migrate, collectstatic, pod_gateway.runner web on 127.0.0.1:$port)"
"${run[@]}" run -d --name "$tag-web" "${common[@]}" "$image" web >/dev/null
wait_for /api/health 180 || { echo "FAIL: /api/health did not answer 200"; exit 1; }

echo "== start the worker (in the web container's PID namespace: one metrics directory, distinct pids)"
"${run[@]}" run -d --name "$tag-worker" --pid "container:$tag-web" "${common[@]}" "$image" worker >/dev/null
wait_for /api/ready 90 || {
  echo "FAIL: /api/ready did not answer 200:"
  ready_body || true
  exit 1
}
ready_body

echo "== a generation queued in web is drawn by the worker and counted in web's /api/metrics"
"${run[@]}" exec "$tag-web" python manage.py generate "image test $$" --batch-size 2 --width 512 --height 512 \
  --backend procedural >/dev/null
counted() {
  "${run[@]}" exec "$tag-web" python -c "import sys, urllib.request as u
from prometheus_client.parser import text_string_to_metric_families as parse
request = u.Request('http://127.0.0.1:$port/api/metrics', headers={'Host': 'pod.example.test'})
text = u.urlopen(request, timeout=5).read().decode()
values = {s.name: s.value for f in parse(text) for s in f.samples}
print(values.get('pod_generation_completed_total', 0), values.get('pod_images_pending_review', 0))
sys.exit(0 if values.get('pod_generation_completed_total') == 1 and values.get('pod_images_pending_review') == 2 else 1)"
}
for _ in $(seq 1 60); do
  counted >/dev/null 2>&1 && break
  sleep 1
done
counted || { echo "FAIL: the worker's generation is not in web's metrics (completed, pending shown above)"; exit 1; }

echo "== stop both with SIGTERM (they exit 0)"
podman stop -t 30 "$tag-worker" "$tag-web" >/dev/null
for name in "$tag-worker" "$tag-web"; do
  code="$(podman container inspect -f '{{.State.ExitCode}}' "$name")"
  [[ "$code" == 0 ]] || { echo "FAIL: $name exited $code after SIGTERM"; exit 1; }
done
echo "image-test passed: $image (base $BASE_IMAGE) served /api/ready with web + worker, generated and counted"
}

main "$@"
