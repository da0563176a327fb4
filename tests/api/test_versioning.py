"""Versions, deprecation headers, trailing slashes and the documentation endpoints."""

from __future__ import annotations

import datetime

import pytest

from images.models import Image

pytestmark = pytest.mark.django_db


def test_version_endpoint_lists_current_supported_and_deprecated(anon, settings):
    settings.API_DEPRECATED_VERSIONS = ["v1"]
    settings.API_SUNSET = {"v1": datetime.date(2027, 6, 30)}
    for path in ("/api/version", "/api/version/"):
        assert anon.get(path).json() == {
            "current": "v2", "supported": ["v1", "v2"], "deprecated": [{"version": "v1", "sunset": "2027-06-30"}],
        }


def test_nothing_is_deprecated_by_default(as_client):
    response = as_client.get("/api/v1/images")
    assert "Deprecation" not in response and "Sunset" not in response
    assert as_client.get("/api/version").json()["deprecated"] == []


def test_deprecated_version_sends_deprecation_and_sunset_on_every_response(as_client, settings):
    settings.API_DEPRECATED_VERSIONS = ["v1"]
    settings.API_SUNSET = {"v1": datetime.date(2027, 6, 30)}
    for response in (as_client.get("/api/v1/images"), as_client.get("/api/v1/images/missing")):
        assert response["Deprecation"] == "true"
        assert response["Sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    assert "Deprecation" not in as_client.get("/api/v2/images")


def test_deprecated_without_sunset_sends_only_deprecation(as_client, settings):
    settings.API_DEPRECATED_VERSIONS = ["v2"]
    settings.API_SUNSET = {}
    response = as_client.get("/api/v2/stats")
    assert response["Deprecation"] == "true" and "Sunset" not in response


def test_sunset_setting_is_parsed_and_checked(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from pod_gateway.settings import env_sunsets

    monkeypatch.setenv("API_SUNSET", "v1=2027-06-30")
    assert env_sunsets("API_SUNSET") == {"v1": datetime.date(2027, 6, 30)}
    for bad in ("v1=soon", "v9=2027-01-01", "v1"):
        monkeypatch.setenv("API_SUNSET", bad)
        with pytest.raises(ImproperlyConfigured):
            env_sunsets("API_SUNSET")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/images", "/api/v1/images/", "/api/v2/stats", "/api/v2/stats/", "/api/v1/generations",
     "/api/v2/generations/", "/api/health", "/api/health/"],
)
def test_paths_answer_with_and_without_trailing_slash_without_redirect(as_client, path):
    assert as_client.get(path).status_code == 200


def test_post_without_trailing_slash_is_not_redirected(as_reviewer, make_image):
    image, other = make_image(), make_image()
    response = as_reviewer.post(f"/api/v1/images/{image.id}/approve")
    assert response.status_code == 200 and response.json()["status"] == "approved"
    response = as_reviewer.post("/api/v1/batch/reject/", {"image_ids": [other.id]}, format="json")
    assert response.status_code == 200
    assert Image.objects.get(id=image.id).status == "approved" and Image.objects.get(id=other.id).status == "rejected"


def test_health_needs_no_credentials_and_ignores_bad_ones(anon):
    assert anon.get("/api/health").json() == {"status": "ok"}
    anon.credentials(HTTP_AUTHORIZATION="Token bogus")
    assert anon.get("/api/health").status_code == 200


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_one_schema_per_version(anon, version):
    response = anon.get(f"/api/schema/?version={version}&format=json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    assert f"/api/{version}/images/" in paths
    assert not any(p.startswith("/api/v1/" if version == "v2" else "/api/v2/") for p in paths)
    listing = paths[f"/api/{version}/images/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][listing["$ref"].rsplit("/", 1)[1]]
    assert ("count" in component["properties"]) is (version == "v1")
    error_media = "application/problem+json" if version == "v2" else "application/json"
    assert error_media in paths[f"/api/{version}/images/{{id}}/"]["get"]["responses"]["404"]["content"]


def test_schema_of_an_unknown_version_is_unsupported(anon):
    response = anon.get("/api/schema/?version=v7")
    assert response.status_code == 404 and response.json()["code"] == "UNSUPPORTED_VERSION"


def test_schema_is_valid_openapi():
    from django.core.management import call_command

    # --validate checks the generated document against the OpenAPI 3 meta-schema; --fail-on-warn also
    # refuses the generator's warnings (an untyped parameter, a serializer it could not read).
    for version in ("v1", "v2"):
        call_command("spectacular", "--validate", "--fail-on-warn", "--api-version", version, "--file", "/dev/null")


@pytest.mark.parametrize("path,marker", [("/api/docs/", b"swagger-ui"), ("/api/redoc/", b"redoc")])
def test_docs_are_served_with_local_assets(anon, path, marker):
    response = anon.get(path)
    assert response.status_code == 200
    html = response.content
    assert marker in html.lower()
    assert b"cdn.jsdelivr" not in html and b"unpkg.com" not in html
    assert b"/static/drf_spectacular_sidecar/" in html


@pytest.mark.parametrize("path", ["/api/v1/images", "/api/v1/generate", "/api/v2/stats", "/api/v2/batch/approve"])
def test_options_describes_the_endpoint_to_signed_in_users(as_client, anon, path):
    response = as_client.options(path)
    assert response.status_code == 200 and "name" in response.json()
    assert anon.options(path).status_code == 401
