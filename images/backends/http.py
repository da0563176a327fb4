"""HTTP sessions for backend clients: explicit timeouts and one retry policy (urllib3 Retry)."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from images.backends.base import BackendError, TransientBackendError

RETRY_STATUSES = (429, 500, 502, 503, 504)
# Answers that say the request was not taken on: the only ones after which a job submission is re-sent.
# After a 500/502/504 the job may exist remotely, and sending it again could pay for it twice.
NOT_ACCEPTED_STATUSES = (429, 503)
USER_AGENT = "POD-Gateway/1.0"


class BackendSession(requests.Session):
    """A Session that knows whether its calls may be sent again after an unclear outcome."""

    idempotent: bool = True

    @property
    def transient_statuses(self) -> tuple[int, ...]:
        return RETRY_STATUSES if self.idempotent else NOT_ACCEPTED_STATUSES


def session(*, idempotent: bool) -> BackendSession:
    """A Session retrying connection errors, 429 and 5xx with backoff, honouring Retry-After.

    Read errors and 500/502/504 (the request may have arrived) are retried only for idempotent
    calls, so a job submission whose answer was lost is not sent (and paid for) twice.
    """
    retries = settings.HTTP_RETRIES
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries if idempotent else 0,
        status=retries,
        backoff_factor=settings.HTTP_RETRY_BACKOFF_SECONDS,
        backoff_max=30,
        status_forcelist=RETRY_STATUSES if idempotent else NOT_ACCEPTED_STATUSES,
        allowed_methods=frozenset({"GET", "POST", "DELETE"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    s = BackendSession()
    adapter = HTTPAdapter(max_retries=retry)
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
        if s.idempotent or _never_sent(exc):
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
    if response.status_code >= 400:
        raise BackendError(
            f"{service} refused the request ({response.status_code}): {response.text[:300]}",
            details={"status_code": response.status_code},
        )
    return response


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never made, so the server cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, (NewConnectionError, ConnectTimeoutError))


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
