"""Opaque, prefixed, roughly time-ordered identifiers (`img_01…`) for every public resource."""

import base64
import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
# base64's RFC 4648 base32 digits → ours, so the 80 random bits are encoded in C (batch actions make
# one id per row; the digit loop cost ~6 µs an id).
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


# (millisecond, its 10 encoded digits): one tuple, so threads always read a matching pair.
_time_cache: tuple[int, str] = (-1, "")


def new_id(prefix: str) -> str:
    """A ULID-like id: 10 chars of millisecond time then 16 random chars, behind `prefix_`."""
    global _time_cache
    ms = int(time.time() * 1000)
    cached_ms, time_part = _time_cache
    if ms != cached_ms:
        time_part = _encode(ms, 10)
        _time_cache = (ms, time_part)
    # 10 random bytes are exactly 16 base32 digits, most significant first, as `_encode` would give.
    return f"{prefix}_{time_part}{base64.b32encode(os.urandom(10)).decode().translate(_FROM_RFC4648)}"


# Field defaults, one per resource (module-level functions, so migrations can refer to them).
def new_generation_id() -> str:
    return new_id("gen")


def new_image_id() -> str:
    return new_id("img")


def new_template_id() -> str:
    return new_id("tpl")


def new_product_id() -> str:
    return new_id("prd")


def new_event_id() -> str:
    return new_id("evt")


def new_webhook_id() -> str:
    return new_id("wh")


def new_delivery_id() -> str:
    return new_id("whd")
