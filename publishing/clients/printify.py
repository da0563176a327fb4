"""A small Printify REST client (https://developers.printify.com) over `requests`.

Retries follow the gateway's one policy (`core.retry`): reads, uploads and publishes are repeatable
and re-sent after 429 (honouring `Retry-After`), 5xx, timeouts and dropped connections, with
exponential backoff and jitter. Creating a product is not: it is re-sent only after 429 or a
connection that was never made. When its outcome is unclear (5xx, timeout, dropped connection) the
error says so (`PrintifyError.unclear`) and the pipeline looks for the product before trying again.
Any other 4xx is a permanent refusal and surfaces Printify's own message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from core import retry
from core.errors import ExternalServiceError

USER_AGENT = "POD-Gateway/1.0 (+printify-client)"
# Printify's largest pages of a product and of an upload list.
PRODUCTS_PAGE_MAX = 50
UPLOADS_PAGE_MAX = 100


class PrintifyError(ExternalServiceError):
    """Printify refused or failed a request.

    `retryable` is False for a permanent 4xx refusal; `unclear` is True when a request that creates
    something may nevertheless have been processed (5xx, timeout, dropped connection).
    """

    def __init__(
        self, message: str, *, status: int | None = None, retryable: bool = True, unclear: bool = False
    ) -> None:
        super().__init__(message, details={"platform": "printify", "status": status})
        self.status_code = status
        self.retryable = retryable
        self.unclear = unclear


def _session(*, repeatable: bool, base_url: str) -> requests.Session:
    session = requests.Session()
    policy = retry.retry_policy(
        repeatable=repeatable,
        total=settings.PRINTIFY_RETRIES,
        backoff=settings.PRINTIFY_BACKOFF_SECONDS,
        backoff_max=settings.PRINTIFY_BACKOFF_SECONDS * 32,
        retry_after_max=settings.PRINTIFY_RETRY_AFTER_MAX,
    )
    session.mount(base_url + "/", HTTPAdapter(max_retries=policy))
    return session


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
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if request_id:
            headers["X-Request-ID"] = request_id
        # One session per kind of request (`core.retry`): repeatable ones, and the product create.
        self.session = _session(repeatable=True, base_url=self.base_url)
        self.create_session = _session(repeatable=False, base_url=self.base_url)
        for session in (self.session, self.create_session):
            session.headers.update(headers)

    @classmethod
    def from_settings(cls, *, request_id: str | None = None) -> PrintifyClient:
        """A client configured from settings; `ExternalServiceError` if the API key is missing."""
        if not settings.PRINTIFY_API_KEY:
            raise PrintifyError("PRINTIFY_API_KEY is not set", retryable=False)
        return cls(request_id=request_id)

    def close(self) -> None:
        self.session.close()
        self.create_session.close()

    def _require_shop(self) -> str:
        if not self.shop_id:
            raise PrintifyError("PRINTIFY_SHOP_ID is not set (list your shops with `manage.py printify_shops`)",
                                retryable=False)
        return self.shop_id

    def request(
        self, method: str, path: str, *, json: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
        repeatable: bool = True,
    ) -> Any:
        url = f"{self.base_url}/{path.lstrip('/')}"
        session = self.session if repeatable else self.create_session
        try:
            response = session.request(method, url, json=json, params=params, timeout=self.timeout)
        except requests.exceptions.RetryError as exc:
            raise PrintifyError(f"Printify {method} {path}: still failing after retries ({exc})") from exc
        except requests.exceptions.Timeout as exc:
            unclear = not repeatable and retry.outcome_unclear(exc=exc)
            raise PrintifyError(f"Printify {method} {path}: timed out", unclear=unclear) from exc
        except requests.exceptions.ConnectionError as exc:
            unclear = not repeatable and retry.outcome_unclear(exc=exc)
            raise PrintifyError(f"Printify {method} {path}: connection failed ({_reason(exc)})",
                                unclear=unclear) from exc
        if response.status_code >= 400:
            message = _error_message(response)
            status = response.status_code
            raise PrintifyError(
                f"Printify {method} {path} answered {status}: {message}",
                status=status,
                retryable=status in retry.RETRY_STATUSES,
                unclear=not repeatable and retry.outcome_unclear(status=status),
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError as exc:
            # The request was processed (2xx) but its answer is unreadable: as unclear as a lost answer.
            raise PrintifyError(f"Printify {method} {path}: the answer is not JSON", unclear=not repeatable) from exc

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
        """Create a product; never re-sent after an unclear outcome (see `PrintifyError.unclear`)."""
        return self.request("POST", f"shops/{self._require_shop()}/products.json", json=product, repeatable=False)

    def product_publish(self, *, product_id: str) -> dict[str, Any]:
        body = {field: True for field in ("title", "description", "images", "variants", "tags",
                                          "keyFeatures", "shipping_template")}
        return self.request("POST", f"shops/{self._require_shop()}/products/{product_id}/publish.json", json=body)

    def publishing_succeeded(self, *, product_id: str, external_id: str, handle: str) -> dict[str, Any]:
        """Tell Printify a custom-integration shop listed the product (`external{id, handle}`); unlocks it."""
        body = {"external": {"id": external_id, "handle": handle}}
        return self.request("POST", f"shops/{self._require_shop()}/products/{product_id}/publishing_succeeded.json",
                            json=body)

    def publishing_failed(self, *, product_id: str, reason: str) -> dict[str, Any]:
        """Tell Printify a custom-integration shop could not list the product; unlocks it."""
        return self.request("POST", f"shops/{self._require_shop()}/products/{product_id}/publishing_failed.json",
                            json={"reason": reason[:1000]})

    def products_recent(self, *, max_pages: int) -> Iterator[dict[str, Any]]:
        """The shop's products, newest first, from at most `max_pages` pages."""
        return self._recent(f"shops/{self._require_shop()}/products.json", max_pages=max_pages,
                            limit=PRODUCTS_PAGE_MAX, time_key="created_at")

    def uploads_recent(self, *, max_pages: int) -> Iterator[dict[str, Any]]:
        """The account's uploaded files, newest first, from at most `max_pages` pages."""
        return self._recent("uploads.json", max_pages=max_pages, limit=UPLOADS_PAGE_MAX, time_key="upload_time")

    def _page(self, path: str, *, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """One page of a paginated list (`{current_page, last_page, data[…]}`): its items and the last page."""
        answer = self.request("GET", path, params={"page": page, "limit": limit})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise PrintifyError(f"Printify answered GET {path} without its data")
        last = answer.get("last_page")
        return [item for item in data if isinstance(item, dict)], last if isinstance(last, int) else page

    def _recent(self, path: str, *, max_pages: int, limit: int, time_key: str) -> Iterator[dict[str, Any]]:
        """A list's items newest first, whichever way Printify orders it.

        The documentation does not promise an order: if the first page runs oldest first, the newest
        items are on the last pages, which are then read backwards.
        """
        items, last = self._page(path, page=1, limit=limit)
        if not _oldest_first(items, time_key):
            yield from items
            for page in range(2, min(last, max_pages) + 1):
                yield from self._page(path, page=page, limit=limit)[0]
            return
        if last == 1:
            yield from reversed(items)
            return
        for page in range(last, max(0, last - max_pages), -1):
            yield from reversed(self._page(path, page=page, limit=limit)[0])


def _oldest_first(items: list[dict[str, Any]], time_key: str) -> bool:
    """Whether a page runs from older to newer (by `time_key`, e.g. `2026-12-01 16:37:45+00:00`)."""
    times = [str(item.get(time_key) or "") for item in (items[0], items[-1])] if len(items) > 1 else []
    # Printify's timestamps are fixed-width, so they compare as text.
    return bool(times) and all(times) and times[0] < times[-1]


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
