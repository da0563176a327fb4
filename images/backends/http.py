"""HTTP sessions for backend clients: explicit timeouts and the gateway's one retry policy (`core.retry`)."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from core import retry
from images.backends.base import BackendError, TransientBackendError

USER_AGENT = "POD-Gateway/1.0"


class BackendSession(requests.Session):
    """A Session that knows whether its calls may be sent again after an unclear outcome."""

    idempotent: bool = True

    @property
    def transient_statuses(self) -> frozenset[int]:
        return retry.retry_statuses(repeatable=self.idempotent)


def session(*, idempotent: bool) -> BackendSession:
    """A Session retrying as `core.retry` declares for repeatable (`idempotent`) or creating calls.

    A job submission whose answer was lost, or that answered 5xx, is not sent (and paid for) twice.
    """
    policy = retry.retry_policy(
        repeatable=idempotent, total=settings.HTTP_RETRIES, backoff=settings.HTTP_RETRY_BACKOFF_SECONDS,
    )
    s = BackendSession()
    adapter = HTTPAdapter(max_retries=policy)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    s.idempotent = idempotent
    return s


def request(
    s: BackendSession,
    method: str,
    url: str,
    *,
    service: str,
    request_id: str | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one call; transient failures become TransientBackendError, other non-2xx BackendError."""
    headers = dict(kwargs.pop("headers", None) or {})
    if request_id:
        headers["X-Request-ID"] = request_id
    kwargs.setdefault("timeout", settings.HTTP_TIMEOUT_SECONDS)
    try:
        response = s.request(method, url, headers=headers, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        if s.idempotent or retry.never_sent(exc):
            raise TransientBackendError(f"{service} is unreachable: {type(exc).__name__}") from exc
        raise BackendError(
            f"{service} did not answer ({type(exc).__name__}); the request may have been taken on, so it is"
            " not sent again"
        ) from exc
    except requests.RequestException as exc:
        raise BackendError(f"{service} request failed: {exc}") from exc
    if response.status_code in s.transient_statuses:
        raise TransientBackendError(
            f"{service} answered {response.status_code} after retries", details={"status_code": response.status_code}
        )
    if not s.idempotent and retry.outcome_unclear(status=response.status_code):
        raise BackendError(
            f"{service} answered {response.status_code}; the request may have been taken on, so it is not sent"
            " again",
            details={"status_code": response.status_code},
        )
    if response.status_code >= 400:
        raise BackendError(
            f"{service} refused the request ({response.status_code}): {response.text[:300]}",
            details={"status_code": response.status_code},
        )
    return response


def json_body(response: requests.Response, *, service: str) -> dict[str, Any]:
    """The JSON object the service answered; BackendError for anything else (not JSON, a list, …)."""
    try:
        body = response.json()
    except ValueError as exc:
        raise BackendError(f"{service} answered with something that is not JSON") from exc
    if not isinstance(body, dict):
        raise BackendError(f"{service} answered with JSON that is not an object")
    return body


def download(s: requests.Session, url: str, *, service: str, request_id: str | None = None) -> bytes:
    """Fetch image bytes, refusing anything over the intake size cap without reading it whole."""
    limit = settings.IMAGE_MAX_BYTES
    response = request(s, "GET", url, service=service, request_id=request_id, stream=True)
    chunks: list[bytes] = []
    size = 0
    with response:
        for chunk in response.iter_content(chunk_size=1 << 20):
            size += len(chunk)
            if size > limit:
                raise BackendError(f"{service} image is larger than {limit // (1024 * 1024)} MB")
            chunks.append(chunk)
    return b"".join(chunks)
