"""The input rules every string follows (CONTRACT §4): trimmed, control characters removed, no markup.

The markup rules read a text after normalisation (NFKC, HTML entities decoded, whitespace folded),
so full-width brackets, entities and a tab inside `javascript:` do not step around them.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Characters removed from every string: control characters (NUL included) and lone surrogates,
# which PostgreSQL refuses to store. Tab and newlines survive until folding.
_KEEP_CONTROLS = frozenset("\t\n\r")
_NEWLINES = re.compile(r"\s*[\r\n]+\s*")

# Markup and script patterns refused in every text that leaves the gateway (prompts, listing titles,
# descriptions, tags: they end up in product listings, listing.json and admin pages). They are matched
# against the text as a browser or a renderer would read it (see `normalised_for_rules`), not as sent.
_MARKUP = (
    (re.compile(r"<\s*/?\s*script", re.IGNORECASE), "script tags"),
    (re.compile(r"\bon[a-z]{3,}\s*=", re.IGNORECASE), "event handler attributes"),
    (re.compile(r"<\s*/?\s*[a-z!][^<>]*>", re.IGNORECASE), "HTML tags"),
    # A tag that is opened and never closed still starts an element (`<img src=x onerror=…`, `<svg`).
    (re.compile(r"<[/!?]?[a-z]", re.IGNORECASE), "HTML tags"),
)
# Browsers drop whitespace and control characters inside a URL scheme (`java\tscript:` runs), so script
# URLs are looked for in the text with all of them removed.
_SCRIPT_URL = re.compile(r"(?:java|vb|live)script:|data:text/html", re.IGNORECASE)
# Rounds of entity decoding: `&amp;lt;` is `<` to whatever decodes the listing twice.
_ENTITY_ROUNDS = 3


def clean_text(value: str, *, fold_newlines: bool = False) -> str:
    """Trim, drop NUL/control characters and lone surrogates; optionally fold newlines into spaces."""
    cleaned = "".join(
        ch for ch in value
        if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    if fold_newlines:
        cleaned = _NEWLINES.sub(" ", cleaned)
    return cleaned.strip()


def normalised_for_rules(value: str) -> str:
    """`value` as the markup rules read it: Unicode NFKC (full-width `＜` is `<`), HTML entities decoded
    (repeatedly: `&amp;lt;`), format characters (zero-width, bidi) removed and all whitespace folded to one space."""
    text = value
    for _ in range(_ENTITY_ROUNDS):
        decoded = html.unescape(unicodedata.normalize("NFKC", text))
        if decoded == text:
            break
        text = decoded
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch.isspace())
    return " ".join(text.split())


def markup_found(value: str) -> str | None:
    """The kind of markup or script pattern in `value` ("script tags", …) once normalised, or None."""
    text = normalised_for_rules(value)
    if _SCRIPT_URL.search("".join(text.split())):
        return "script URLs"
    return next((name for pattern, name in _MARKUP if pattern.search(text)), None)
