"""Opaque, prefixed, roughly time-ordered identifiers (`img_01…`) for every public resource."""

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, rem = divmod(number, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """A ULID-like id: 10 chars of millisecond time then 16 random chars, behind `prefix_`."""
    return f"{prefix}_{_encode(int(time.time() * 1000), 10)}{_encode(secrets.randbits(80), 16)}"


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
