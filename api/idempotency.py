"""`Idempotency-Key` on POSTs under /api/ (CONTRACT §4), as middleware so every POST view is covered.

The first request with a key claims it by inserting a `running` record (unique per user and key: of two
concurrent requests exactly one insert succeeds); its response is then stored and replayed for 24 h to
the same user sending the same key and the same request. The same key with another request is refused
(422), and a retry while the first is still running gets 409. Responses that say the request never ran
(401, 403, 429, 5xx) are not stored, so the client can retry them with the same key.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from api.authentication import TokenAuthentication
from api.exceptions import error_response
from api.models import IdempotencyRecord, IdempotencyState

HEADER = "HTTP_IDEMPOTENCY_KEY"
KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# Statuses meaning the request was refused before it ran: not stored, the key stays usable.
NOT_STORED = frozenset({401, 403, 429})


def idempotency_prune() -> int:
    """Delete expired idempotency records; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def request_fingerprint(request: HttpRequest) -> str:
    """sha256 over method, path (trailing slash ignored), query and body: what 'the same request' means."""
    digest = hashlib.sha256()
    for part in (request.method, request.path.rstrip("/"), request.META.get("QUERY_STRING", "")):
        digest.update(part.encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()


def _user_of(request: HttpRequest):
    """The user the API will see: a valid token's user, else the session user; None when anonymous."""
    try:
        authenticated = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    if authenticated is not None:
        return authenticated[0]
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


class IdempotencyMiddleware:
    """Replays the stored response of an earlier POST with the same `Idempotency-Key`."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER)
        if key is None or request.method != "POST" or not request.path.startswith("/api/"):
            return self.get_response(request)
        if not KEY_RE.match(key):
            return error_response(
                request,
                status=400,
                code="VALIDATION_ERROR",
                message="Idempotency-Key must be 1-255 printable ASCII characters",
                details={"fields": {"Idempotency-Key": ["Must be 1-255 printable ASCII characters."]}},
            )
        user = _user_of(request)
        if user is None:
            # Anonymous POSTs are refused by the API (401) and never run, so there is nothing to replay.
            return self.get_response(request)
        try:
            fingerprint = request_fingerprint(request)
        except RequestDataTooBig:
            return self.get_response(request)

        record, claimed = _claim(user=user, key=key, fingerprint=fingerprint)
        if not claimed:
            return _answer_existing(request, record, fingerprint)
        try:
            response = self.get_response(request)
        except BaseException:
            record.delete()
            raise
        _store(record, response)
        return response


def _claim(*, user, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Insert the `running` record, or return the one that already holds the key (claimed=False)."""
    now = timezone.now()
    idempotency_prune()
    stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_RUNNING_TIMEOUT)
    for _ in range(3):
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=user,
                    key=key,
                    request_hash=fingerprint,
                    created_at=now,
                    expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_TTL),
                )
            return record, True
        except IntegrityError:
            pass
        record = IdempotencyRecord.objects.filter(user=user, key=key).first()
        if record is None:
            continue  # removed between our insert and our read (expired or failed): try again
        if record.state == IdempotencyState.RUNNING and record.created_at < stale_before:
            # The process that claimed it died mid-request: free the key (only if still that record).
            IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyState.RUNNING).delete()
            continue
        return record, False
    raise RuntimeError("Could not claim the idempotency key")  # only under pathological churn


def _answer_existing(request: HttpRequest, record: IdempotencyRecord, fingerprint: str) -> HttpResponse:
    if record.request_hash != fingerprint:
        return error_response(
            request,
            status=422,
            code="IDEMPOTENCY_KEY_REUSED",
            message="This Idempotency-Key was already used with a different request",
            details={"idempotency_key": record.key},
        )
    if record.state == IdempotencyState.RUNNING:
        return error_response(
            request,
            status=409,
            code="CONFLICT",
            message="A request with this Idempotency-Key is still being processed; retry shortly",
            details={"idempotency_key": record.key},
            headers={"Retry-After": "1"},
        )
    response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
    if record.location:
        response["Location"] = record.location
    response["Idempotent-Replayed"] = "true"
    return response


def _store(record: IdempotencyRecord, response: HttpResponse) -> None:
    if response.streaming or response.status_code >= 500 or response.status_code in NOT_STORED:
        record.delete()
        return
    record.state = IdempotencyState.COMPLETED
    record.status_code = response.status_code
    record.content_type = response.get("Content-Type", "")
    record.location = response.get("Location", "")
    record.body = response.content
    record.save(update_fields=["state", "status_code", "content_type", "location", "body"])
