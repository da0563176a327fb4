"""When a request to an outside service may be sent again: declared once for every client.

Two kinds of request:

- *Repeatable*: reads, and writes whose repetition changes nothing — a Printify upload (an unused upload
  is harmless) or publish (publishing again repeats the same listing), a RunPod/ComfyUI status poll or
  cancel, a webhook delivery (receivers deduplicate on its `webhook-id`, the same on every attempt; the
  delivery schedule in `webhooks.delivery` retries any failure). They are re-sent after a refused or
  dropped connection, a timeout, 429 and 5xx.
- *Creating*: a request that makes something that costs — a RunPod/ComfyUI job, a Printify product. It
  is re-sent only when it is known not to have been processed: the connection was never made, or the
  service answered 429 (a rate limit refuses before doing anything). After a 5xx, a timeout or a
  dropped connection its outcome is unclear: the caller must find out what happened (Printify: look
  for the product by the marker it was created with) instead of sending it again.

Any other 4xx is a refusal that repeating will not change. The clients build their urllib3 `Retry`
from `retry_policy` and classify failures with `outcome_unclear`; none declares statuses of its own.
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

# Answers worth another try of a repeatable request.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Answers that say the request was not processed: the only ones after which a creating request is re-sent.
NOT_PROCESSED_STATUSES = frozenset({429})
# Every method may be re-sent by `Retry`; whether a request is repeatable is the caller's declaration.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def retry_statuses(*, repeatable: bool) -> frozenset[int]:
    """The answers after which a request of this kind is sent again."""
    return RETRY_STATUSES if repeatable else NOT_PROCESSED_STATUSES


def retry_policy(
    *,
    repeatable: bool,
    total: int,
    backoff: float,
    backoff_max: float = 30.0,
    retry_after_max: float | None = None,
) -> Retry:
    """A urllib3 `Retry`: exponential backoff with jitter, honouring `Retry-After`.

    A refused connection is always retried (nothing was sent); read errors (timeouts, dropped
    connections) and 5xx only for repeatable requests.
    """
    kwargs = {"retry_after_max": retry_after_max} if retry_after_max is not None else {}
    return Retry(
        total=total,
        connect=total,
        read=total if repeatable else 0,
        status=total,
        other=0,
        status_forcelist=retry_statuses(repeatable=repeatable),
        allowed_methods=METHODS,
        respect_retry_after_header=True,
        backoff_factor=backoff,
        backoff_max=max(backoff_max, 0.1),
        backoff_jitter=backoff,
        raise_on_status=False,
        **kwargs,
    )


def never_sent(exc: BaseException) -> bool:
    """True when the connection was never made, so the service cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if getattr(exc, "args", None) else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def outcome_unclear(*, status: int | None = None, exc: BaseException | None = None) -> bool:
    """Whether a failed creating request may have been processed (so it must not be sent blindly again)."""
    if exc is not None:
        return not never_sent(exc)
    return status is not None and status >= 500
