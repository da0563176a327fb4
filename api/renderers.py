"""The API's JSON renderer: DRF's `JSONRenderer` output, encoded by orjson.

A page of 50 images spent more time in the json module (DRF's encoder, `ensure_ascii=False`, compact
separators) than in the query behind it; orjson encodes the same documents several times faster. What
orjson does not know itself (lazy strings, Decimal, datetimes — these as DRF writes them: `…Z` for UTC)
goes through DRF's own encoder, so values render as they did. Anything orjson refuses (an integer beyond
64 bits, a key that is not a string) and pretty-printing (`Accept: application/json; indent=4`) fall
back to DRF's renderer unchanged. One difference: a float NaN or infinity renders as `null`, where DRF's
strict mode fails the response.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

# Datetimes, dates and times through DRF's encoder (orjson's own would write `+00:00`, not `Z`).
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
_default = JSONEncoder().default
# U+2028/U+2029 are valid JSON but end a line in JavaScript; DRF escapes them, so do we.
_LINE_SEPARATORS = ((b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))


class FastJSONRenderer(JSONRenderer):
    """`JSONRenderer` (UTF-8, compact, no ASCII escaping) with orjson doing the encoding."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        if self.ensure_ascii or not self.compact or self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80" in body:
            for raw, escaped in _LINE_SEPARATORS:
                body = body.replace(raw, escaped)
        return body
