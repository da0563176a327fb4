"""WSGI entry point for POD Gateway (gunicorn pod_gateway.wsgi).

gunicorn may be started directly, on a data directory nothing has prepared yet: it is made here,
before the settings are read and Django is set up, so that every worker reads the same secret key
file and shares the metrics directory.
"""
import os

from django.core.wsgi import get_wsgi_application

from core import datadir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
datadir.prepare(*datadir.locate())
application = get_wsgi_application()
