"""Secrets and signatures: GitHub-style `X-Webhook-Signature` and the Standard Webhooks headers.

The Standard Webhooks scheme is small and fully specified (HMAC-SHA256 over `{id}.{timestamp}.{body}`
with the base64-decoded `whsec_` secret); signing it here is a few lines, and the tests verify every
signature with the `standardwebhooks` and `svix` libraries themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def secret_new() -> str:
    """`whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature_hex(*, secret: str, body: bytes) -> str:
    """`X-Webhook-Signature`: `sha256=` + hex HMAC-SHA256 of the raw body, keyed with the secret's text."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_standard(*, secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: `v1,<base64>` for each valid secret, space-separated."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode("ascii")
        for secret in secrets_
    )


def headers(*, secrets_: list[str], event_id: str, event_type: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every header of one attempt; `secrets_` newest first (the first also signs `X-Webhook-Signature`)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "POD-Gateway-Webhook/1.0",
        "X-Webhook-Event": event_type,
        "X-Webhook-ID": event_id,
        "X-Webhook-Signature": signature_hex(secret=secrets_[0], body=body),
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_standard(secrets_=secrets_, msg_id=event_id, timestamp=timestamp, body=body),
    }
