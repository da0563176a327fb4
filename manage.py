#!/usr/bin/env python
"""Django's command-line utility for POD Gateway."""
import os
import sys

from django.core.management import execute_from_command_line

from core import datadir


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
    # Before settings are read: they use the key file and the metrics directory only when they exist.
    datadir.prepare(*datadir.locate())

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
