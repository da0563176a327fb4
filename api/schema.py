"""OpenAPI generation: every operation documents its error responses in its version's error shape."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from api.exceptions import PROBLEM_CONTENT_TYPE

ERROR_DESCRIPTIONS = {
    "400": "VALIDATION_ERROR (details.fields) or MALFORMED_REQUEST",
    "401": "UNAUTHORIZED: no or bad credentials",
    "403": "FORBIDDEN: the role lacks the permission",
    "404": "NOT_FOUND",
    "405": "METHOD_NOT_ALLOWED",
    "406": "NOT_ACCEPTABLE",
    "409": "CONFLICT, INVALID_STATE or DUPLICATE_PROMPT",
    "413": "REQUEST_TOO_LARGE: the body is over the limit (JSON 1 MiB; an upload IMAGE_MAX_BYTES)",
    "415": "UNSUPPORTED_MEDIA_TYPE",
    "422": "IDEMPOTENCY_KEY_REUSED",
    "429": "RATE_LIMIT_EXCEEDED (Retry-After)",
    "502": "EXTERNAL_SERVICE_ERROR",
}
# Errors any authenticated call may meet; writes add the body-related ones.
READ_ERRORS = ("400", "401", "403", "404", "405", "406", "429")
WRITE_ERRORS = READ_ERRORS + ("409", "413", "415", "422", "502")
PUBLIC_ERRORS = ("405", "406", "429")

ErrorEnvelope = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(),
        "code": serializers.CharField(),
        "details": serializers.DictField(),
        "request_id": serializers.CharField(allow_null=True),
    },
)
Problem = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(),
        "instance": serializers.CharField(allow_null=True),
        "code": serializers.CharField(),
        "request_id": serializers.CharField(allow_null=True),
        "errors": inline_serializer(
            name="ProblemFieldError",
            fields={"detail": serializers.CharField(), "pointer": serializers.CharField()},
            many=True,
        ),
        "details": serializers.DictField(required=False),
    },
)


class AutoSchema(SpectacularAutoSchema):
    """Adds the error responses to every operation: the v1 envelope, or problem+json under v2."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        if not getattr(self.view, "action_permissions", None):
            codes = PUBLIC_ERRORS
        elif self.method in ("GET", "HEAD"):
            codes = READ_ERRORS
        else:
            codes = WRITE_ERRORS
        problem = getattr(getattr(self.view, "request", None), "version", None) == "v2"
        for code in codes:
            if code in responses:
                continue
            if problem:
                response = self._get_response_for_code(Problem, code, media_types=[PROBLEM_CONTENT_TYPE])
            else:
                response = self._get_response_for_code(ErrorEnvelope, code, media_types=["application/json"])
            response["description"] = ERROR_DESCRIPTIONS[code]
            responses[code] = response
        return responses
