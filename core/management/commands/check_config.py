"""`manage.py check_config`: the configuration validation report; exit 1 when it has errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.checks import ERROR, INFO, WARNING, config_issues, config_summary

RULE = "=" * 70
MARKS = {ERROR: "✗ [ERROR]", WARNING: "⚠ [WARNING]", INFO: "ℹ [INFO]"}


class Command(BaseCommand):
    help = "Validate the configuration (settings from the environment) and print a report"
    # The report is the check; Django's own checks would stop it before it prints anything.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-create", action="store_true", help="Do not create missing data directories")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_create"]:
            self._create_directories()
        issues = config_issues()
        errors = [issue for issue in issues if issue.level == ERROR]
        self.stdout.write(RULE)
        self.stdout.write("Configuration Validation Report")
        self.stdout.write(RULE)
        if errors:
            self.stdout.write(self.style.ERROR(f"✗ Configuration has {len(errors)} error(s)"))
        else:
            self.stdout.write(self.style.SUCCESS("✓ Configuration is valid"))
        self.stdout.write("")
        for key, value in config_summary().items():
            self.stdout.write(f"  {key.replace('_', ' ').capitalize()}: {value}")
        if issues:
            self.stdout.write("")
            self.stdout.write("Issues found:")
            for issue in issues:
                style = {ERROR: self.style.ERROR, WARNING: self.style.WARNING}.get(issue.level, str)
                self.stdout.write(style(f"  {MARKS[issue.level]} {issue.setting}: {issue.message}"))
        self.stdout.write(RULE)
        if errors:
            raise CommandError(f"Configuration has {len(errors)} error(s)")

    def _create_directories(self) -> None:
        for path in (Path(settings.MEDIA_ROOT), Path(settings.EXPORT_DIR)):
            if not path.exists():
                try:
                    path.mkdir(parents=True)
                except OSError as exc:
                    self.stderr.write(f"Could not create {path}: {exc.strerror}")
                else:
                    self.stdout.write(f"Created {path}")
