"""Schemathesis over each version's whole OpenAPI schema, in-process against the WSGI app.

For every operation a bounded number of generated requests (valid and invalid) is sent as a superuser;
no response may be a 5xx, and status, content type and body must match what the schema documents.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pod_gateway.wsgi import application

pytestmark = pytest.mark.django_db

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation; ~20 operations per version keeps the whole run well under a minute.
EXAMPLES = 12


@pytest.fixture
def wsgi_app():
    """The real WSGI app, minus closing the DB connection per request (the test's transaction lives on it).

    Django's own test client does the same.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_schema_holds_under_generated_requests(version, superuser, make_image, wsgi_app):
    headers = {"Authorization": f"Token {Token.objects.create(user=superuser).key}"}
    make_image()
    schema = schemathesis.openapi.from_wsgi(f"/api/schema/?version={version}&format=json", wsgi_app)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
