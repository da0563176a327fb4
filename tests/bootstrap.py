"""Loaded with `-p tests.bootstrap` (pyproject.toml), before pytest-django sets Django up.

It prepares the test run's data directory the way `manage.py`, the runner and the WSGI entry point do
before settings are read, so this process and the workers it starts share the key file and the
metrics directory from the first run on.
"""

import os

from core import datadir

# The test database is dropped when the run ends, which a web process's listening connection
# (api.tokencache) would hold open: tokens are not kept in this process and the servers it starts, but
# for the tests of the cache, which turn it on and stop it again.
os.environ.setdefault("API_TOKEN_CACHE", "off")

datadir.prepare(*datadir.locate())
