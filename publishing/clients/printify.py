"""A small Printify REST client (https://developers.printify.com) over `requests`.

Retries live here and only here: a urllib3 `Retry` mounted on the session re-sends a request after
429 (honouring `Retry-After`) and 5xx with exponential backoff and jitter. Any other 4xx is a
permanent refusal and surfaces Printify's own message in `PrintifyError`.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from core.errors import ExternalServiceError

USER_AGENT = "POD-Gateway/1.0 (+printify-client)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class PrintifyError(ExternalServiceError):
    """Printify refused or failed a request. `retryable` is False for a permanent 4xx refusal."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message, details={"platform": "printify", "status": status})
        self.status_code = status
        self.retryable = retryable


def _retry(*, read_retries: bool) -> Retry:
    total = settings.PRINTIFY_RETRIES
    return Retry(
        total=total,
        connect=total,
        # A read error means the request may have been processed; see `PrintifyClient.__init__`.
        read=total if read_retries else 0,
        status=total,
        other=0,
        status_forcelist=RETRY_STATUSES,
        # POST is re-sent too. Safe for uploads (an unused upload is harmless) and for publish
        # (re-publishing a product only repeats the same request). Across task runs, every step's
        # external id is stored as soon as Printify returns it and checked before a step is re-sent,
        # so a resumed pipeline never repeats a step that is known to have succeeded.
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=True,
        retry_after_max=settings.PRINTIFY_RETRY_AFTER_MAX,
        backoff_factor=settings.PRINTIFY_BACKOFF_SECONDS,
        backoff_max=max(settings.PRINTIFY_BACKOFF_SECONDS * 32, 0.1),
        backoff_jitter=settings.PRINTIFY_BACKOFF_SECONDS,
        raise_on_status=False,
    )


class PrintifyClient:
    """Printify API v1 calls used by the gateway; each returns Printify's decoded JSON."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        shop_id: str | None = None,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> None:
        self.api_key = settings.PRINTIFY_API_KEY if api_key is None else api_key
        self.base_url = (settings.PRINTIFY_API_URL if base_url is None else base_url).rstrip("/")
        self.shop_id = str(settings.PRINTIFY_SHOP_ID if shop_id is None else shop_id)
        timeout = settings.PRINTIFY_TIMEOUT_SECONDS if timeout is None else timeout
        # (connect, read): a refused connection fails fast; a big upload gets the whole read budget.
        self.timeout = (min(timeout, 10.0), timeout)
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if self.api_key:
            self.session.headers["Authorization"] = f"Bearer {self.api_key}"
        if request_id:
            self.session.headers["X-Request-ID"] = request_id
        self.session.mount(self.base_url + "/", HTTPAdapter(max_retries=_retry(read_retries=True)))
        # Creating a product is the one call whose repetition costs something (a second product).
        # If the connection drops after it was sent, Printify may already have created it, so that
        # one request is not re-sent automatically; the product fails with a message saying so.
        if self.shop_id:
            create_url = f"{self.base_url}/shops/{self.shop_id}/products.json"
            self.session.mount(create_url, HTTPAdapter(max_retries=_retry(read_retries=False)))

    @classmethod
    def from_settings(cls, *, request_id: str | None = None) -> PrintifyClient:
        """A client configured from settings; `ExternalServiceError` if the API key is missing."""
        if not settings.PRINTIFY_API_KEY:
            raise PrintifyError("PRINTIFY_API_KEY is not set", retryable=False)
        return cls(request_id=request_id)

    def close(self) -> None:
        self.session.close()

    def _require_shop(self) -> str:
        if not self.shop_id:
            raise PrintifyError("PRINTIFY_SHOP_ID is not set (list your shops with `manage.py printify_shops`)",
                                retryable=False)
        return self.shop_id

    def request(self, method: str, path: str, *, json: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = self.session.request(method, url, json=json, timeout=self.timeout)
        except requests.exceptions.RetryError as exc:
            raise PrintifyError(f"Printify {method} {path}: still failing after retries ({exc})") from exc
        except requests.exceptions.Timeout as exc:
            raise PrintifyError(f"Printify {method} {path}: timed out") from exc
        except requests.exceptions.ConnectionError as exc:
            raise PrintifyError(f"Printify {method} {path}: connection failed ({_reason(exc)})") from exc
        if response.status_code >= 400:
            message = _error_message(response)
            raise PrintifyError(
                f"Printify {method} {path} answered {response.status_code}: {message}",
                status=response.status_code,
                retryable=response.status_code in RETRY_STATUSES,
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            raise PrintifyError(f"Printify {method} {path}: the answer is not JSON") from exc

    # --- Endpoints ---------------------------------------------------------------------------------

    def shops(self) -> list[dict[str, Any]]:
        return self.request("GET", "shops.json")

    def blueprints(self) -> list[dict[str, Any]]:
        return self.request("GET", "catalog/blueprints.json")

    def print_providers(self, *, blueprint_id: int) -> list[dict[str, Any]]:
        return self.request("GET", f"catalog/blueprints/{int(blueprint_id)}/print_providers.json")

    def variants(self, *, blueprint_id: int, print_provider_id: int) -> dict[str, Any]:
        return self.request(
            "GET", f"catalog/blueprints/{int(blueprint_id)}/print_providers/{int(print_provider_id)}/variants.json"
        )

    def image_upload(self, *, file_name: str, url: str | None = None, contents: str | None = None) -> dict[str, Any]:
        """Upload a print file by public `url` or base64 `contents`; returns the upload (with its `id`)."""
        body: dict[str, Any] = {"file_name": file_name}
        if url:
            body["url"] = url
        else:
            body["contents"] = contents or ""
        return self.request("POST", "uploads/images.json", json=body)

    def product_create(self, *, product: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"shops/{self._require_shop()}/products.json", json=product)

    def product_publish(self, *, product_id: str) -> dict[str, Any]:
        body = {field: True for field in ("title", "description", "images", "variants", "tags",
                                          "keyFeatures", "shipping_template")}
        return self.request("POST", f"shops/{self._require_shop()}/products/{product_id}/publish.json", json=body)


def _reason(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text[:200]


def _error_message(response: requests.Response) -> str:
    """Printify's message, e.g. `Validation failed.: variants.0.id: ...` from its error body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    parts = [str(body.get("message") or body.get("error") or "").strip()]
    errors = body.get("errors")
    if isinstance(errors, dict):
        reason = errors.get("reason")
        parts.append(str(reason) if reason else "; ".join(f"{k}: {v}" for k, v in errors.items() if k != "code"))
    elif errors:
        parts.append(str(errors))
    return ": ".join(p for p in parts if p)[:1000] or response.reason
