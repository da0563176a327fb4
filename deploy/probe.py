"""Container health check: exit 0 when GET URL answers 200, else 1 (the images carry no curl).

    python deploy/probe.py http://127.0.0.1:8000/api/health

The request names the first of ALLOWED_HOSTS as its Host, as a client would: Django refuses any other
host (400), and the probe reaches the server by an address that is not one of them.
"""

import os
import sys
import urllib.error
import urllib.request


def probe_host() -> str | None:
    for name in os.environ.get("ALLOWED_HOSTS", "").split(","):
        name = name.strip().lstrip(".")
        if name and name != "*":
            return name
    return None


def main(url: str) -> int:
    request = urllib.request.Request(url)
    if host := probe_host():
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return 0 if response.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/api/health"))
