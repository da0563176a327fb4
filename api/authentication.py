"""Token authentication that refuses a token which cannot be a key before looking it up.

DRF's TokenAuthentication queries any string; a key holding a NUL byte makes PostgreSQL raise
(a 500 instead of 401). A key is at most 40 printable ASCII characters (DRF makes 40 hex digits).
"""

from __future__ import annotations

import re

from rest_framework import authentication, exceptions

_KEY_RE = re.compile(r"[\x21-\x7e]{1,40}")


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`; a key that is not 1-40 printable ASCII characters is "Invalid token." (401)."""

    def authenticate_credentials(self, key):
        if not _KEY_RE.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
