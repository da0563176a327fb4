"""Request-scoped logging: the request id in every log line, a JSON formatter and body redaction.

The request-id middleware puts the id in a context variable for the duration of a request;
`RequestIdFilter` copies it onto every record (so third-party loggers get it too), and
`current_request_id()` lets outgoing HTTP clients pass it on as `X-Request-ID`.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("pod_request_id", default=None)

# Keys whose values never reach a log: matched case-insensitively as substrings ("new_password").
SENSITIVE_KEYS = ("password", "token", "secret", "api_key", "apikey", "authorization")
REDACTED = "[REDACTED]"
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into JSON.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def current_request_id() -> str | None:
    """The id of the request being handled in this thread/task, for `X-Request-ID` on outgoing calls."""
    return _request_id.get()


def outgoing_headers() -> dict[str, str]:
    """Headers to add to an outgoing call made on behalf of the current request (empty outside one)."""
    request_id = _request_id.get()
    return {"X-Request-ID": request_id} if request_id else {}


def bind_request_id(request_id: str | None):
    """Make `request_id` current; returns the token for `unbind_request_id`."""
    return _request_id.set(request_id)


def unbind_request_id(token) -> None:
    _request_id.reset(token)


# Deeper than this a logged value is cut off (bodies are refused beyond 32 levels; a log needs far fewer).
REDACT_MAX_DEPTH = 40
TOO_DEEP = "[TOO DEEP]"


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of a JSON value with the values of sensitive keys replaced, at any depth (cut off past 40)."""
    if isinstance(value, dict | list) and _depth >= REDACT_MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            key: REDACTED if _is_sensitive(key) else redact(item, _depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, _depth + 1) for item in value]
    return value


def _is_sensitive(key: Any) -> bool:
    lowered = str(key).lower().replace("-", "_")
    return any(word in lowered for word in SENSITIVE_KEYS)


class RequestIdFilter(logging.Filter):
    """Adds `record.request_id` (the current request's id, or "-") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a 4xx/5xx after the middleware returned, but passes the request along.
            record.request_id = (
                _request_id.get() or getattr(getattr(record, "request", None), "request_id", None) or "-"
            )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class OneLineWarning(logging.Filter):
    """Turns a record into one WARNING line without its traceback (for errors that are the client's, not ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
