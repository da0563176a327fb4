"""`python -m benchmarks [NAME…]`: run the bench_*.py modules (all but the scale run, or those named)."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

# Seeding a million rows takes minutes: `make bench-scale` (`python -m benchmarks scale`) runs it.
ONLY_WHEN_NAMED = {"bench_scale"}


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
    data_dir = tempfile.mkdtemp(prefix="pod-bench-")
    # Settings read DATA_DIR at import, so it is set before Django starts: media and the SQLite DB go there.
    os.environ["DATA_DIR"] = data_dir
    try:
        import django
        from django.core.management import call_command
        from django.db import DatabaseError

        django.setup()
        if os.environ.get("DATABASE_URL"):
            # The benchmarks write (and then delete) images and image.created events there.
            print("Using DATABASE_URL: run benchmarks against a scratch database only", file=sys.stderr)
        try:
            call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
        except DatabaseError as exc:
            print(f"Cannot prepare the benchmark database: {exc}", file=sys.stderr)
            return 2
        names = sorted(path.stem for path in Path(__file__).parent.glob("bench_*.py"))
        wanted = [
            name for name in names
            if (not argv and name not in ONLY_WHEN_NAMED) or name in argv or name.removeprefix("bench_") in argv
        ]
        failed = False
        for name in wanted:
            print(f"== {name}", flush=True)
            try:
                lines = importlib.import_module(f"benchmarks.{name}").run()
            except Exception:
                traceback.print_exc()
                failed = True
                continue
            for line in lines:
                print(f"  {line}", flush=True)
                failed |= bool(getattr(line, "over_limit", False)) or "OVER LIMIT" in line
        return 1 if failed else 0
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
