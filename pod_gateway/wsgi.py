"""WSGI entry point for POD Gateway (gunicorn pod_gateway.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pod_gateway.settings")
application = get_wsgi_application()
