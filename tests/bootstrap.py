"""Loaded with `-p tests.bootstrap` (pyproject.toml), before pytest-django sets Django up.

It prepares the test run's data directory the way `manage.py`, the runner and the WSGI entry point do
before settings are read, so this process and the workers it starts share the key file and the
metrics directory from the first run on.
"""

from core import datadir

datadir.prepare(*datadir.locate())
