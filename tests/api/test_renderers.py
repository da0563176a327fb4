"""The API's orjson renderer writes what DRF's JSONRenderer (the json module) writes."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from api.renderers import FastJSONRenderer

DOCUMENT = {
    "id": "img_01", "status": "approved", "width": 4500, "ratio": 0.8333333333333334, "guidance": 2.0,
    "dpi": None, "valid": True, "prompt": "Café «rétro» 🐱 naïve\nnext line\t\"quoted\" \\ back\x01slash",
    "quality": {"valid": False, "errors": ["too small"], "warnings": [], "info": {"format": "PNG", "mode": "RGB"}},
    "history": [{"from_status": "pending", "to_status": "approved", "created_at": "2026-01-02T03:04:05.123456Z"}],
    "negative": -12, "big": 2**62, "empty": "", "nested": [[1, 2], [], [None, False]],
}
SPECIAL = {
    "decimal": decimal.Decimal("12.50"),
    "lazy": gettext_lazy("Not found."),
    "utc": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC),
    "utc_zone": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=ZoneInfo("UTC")),
    "paris": datetime.datetime(2026, 7, 2, 3, 4, 5, tzinfo=ZoneInfo("Europe/Paris")),
    "naive": datetime.datetime(2026, 1, 2, 3, 4, 5),
    "date": datetime.date(2026, 1, 2),
    "time": datetime.time(3, 4, 5, 600),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "tuple": ("a", 1),
    "separators": "a\u2028b\u2029c",
}


def _both(data, accepted_media_type=None) -> tuple[bytes, bytes]:
    return (FastJSONRenderer().render(data, accepted_media_type, {}),
            JSONRenderer().render(data, accepted_media_type, {}))


@pytest.mark.parametrize("data", [DOCUMENT, SPECIAL, [DOCUMENT] * 3, {"results": [], "count": 0, "next": None}])
def test_the_bytes_are_drfs_for_the_values_the_api_renders(data):
    fast, drf = _both(data)
    assert fast == drf
    assert json.loads(fast) == json.loads(drf)


def test_decimal_lazy_text_datetimes_and_uuids_render_as_drf_writes_them():
    body = json.loads(FastJSONRenderer().render(SPECIAL))
    assert body["decimal"] == 12.5
    assert body["lazy"] == "Not found."
    assert body["utc"] == "2026-01-02T03:04:05.123456Z" and body["utc_zone"] == "2026-01-02T03:04:05Z"
    assert body["paris"] == "2026-07-02T03:04:05+02:00" and body["naive"] == "2026-01-02T03:04:05"
    assert (body["date"], body["time"]) == ("2026-01-02", "03:04:05.000600")
    assert body["uuid"] == "12345678-1234-5678-1234-567812345678"
    assert b"\\u2028" in FastJSONRenderer().render(SPECIAL)


@pytest.mark.parametrize("data", [{"huge": 2**70}, {1: "int key", None: "null key"}])
def test_what_orjson_refuses_is_rendered_by_drf(data):
    fast, drf = _both(data)
    assert fast == drf


def test_an_indent_asked_for_is_honoured():
    fast, drf = _both(DOCUMENT, "application/json; indent=4")
    assert fast == drf and b'\n    "id"' in fast


def test_nothing_renders_as_an_empty_body():
    assert FastJSONRenderer().render(None) == b""


def test_an_unknown_type_still_fails():
    with pytest.raises(TypeError):
        FastJSONRenderer().render({"value": object()})


@pytest.mark.django_db
def test_api_responses_are_rendered_by_it_and_v2_errors_stay_problem_json(as_reviewer, make_image):
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_RENDERER_CLASSES == [FastJSONRenderer]
    image = make_image(prompt="Café 🐱")
    response = as_reviewer.get(f"/api/v1/images/{image.id}")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.content == JSONRenderer().render(response.data)
    assert response.json()["prompt"] == "Café 🐱"
    missing = as_reviewer.get("/api/v2/images/img_missing")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"
    assert missing.json()["code"] == "NOT_FOUND"
