"""The input rules every string follows (CONTRACT §4): trimmed, control characters removed, no markup."""

from __future__ import annotations

import re
import unicodedata

# Characters removed from every string: control characters (NUL included) and lone surrogates,
# which PostgreSQL refuses to store. Tab and newlines survive until folding.
_KEEP_CONTROLS = frozenset("\t\n\r")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")

# Markup and script patterns refused in prompts (they end up in product listings and admin pages).
_MARKUP = (
    (re.compile(r"<\s*/?\s*script", re.IGNORECASE), "script tags"),
    (re.compile(r"(java|vb)script\s*:", re.IGNORECASE), "script URLs"),
    (re.compile(r"\bon[a-z]{3,}\s*=", re.IGNORECASE), "event handler attributes"),
    (re.compile(r"<\s*/?\s*[a-z!][^<>]*>", re.IGNORECASE), "HTML tags"),
)


def clean_text(value: str, *, fold_newlines: bool = False) -> str:
    """Trim, drop NUL/control characters and lone surrogates; optionally fold newlines into spaces."""
    cleaned = "".join(
        ch for ch in value
        if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    if fold_newlines:
        cleaned = _NEWLINES.sub(" ", cleaned)
    return cleaned.strip()


def markup_found(value: str) -> str | None:
    """The kind of markup or script pattern in `value` ("script tags", …), or None."""
    return next((name for pattern, name in _MARKUP if pattern.search(value)), None)
