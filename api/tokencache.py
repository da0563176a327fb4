"""Tokens a web process has looked up, kept until PostgreSQL says that a token, a user, a group or a
permission changed.

Every API request authenticates first: its token with the user, and for a user who is not a superuser
the permissions (three queries), each a round trip to PostgreSQL before anything else of the request is
sent; on the commonest calls the token's was the largest single wait. Here what they read is kept per
process and reused while nothing it comes from has changed, and the database says when something has: a
migration (api 0002) has a statement trigger on the token, user, group, membership and permission tables
send a NOTIFY on `CHANNEL` after any change, whatever made it (the admin, a command, a script, a restore,
TRUNCATE), and each process keeps one connection LISTENing on a thread that forgets every kept token at
each notice. A token deleted or a user deactivated is refused from the notice on, which PostgreSQL sends
as the change commits (a request that arrives in between passes, as it could before while the change
was committing).

Kept only while the listener is connected (everything is forgotten when it is not, and again when it
has reconnected), only for requests outside a transaction (what a transaction read may be rolled back,
which sends no notice), and only when no notice arrived while the values were read. The listener checks
its connection every CHECK_SECONDS: a connection the network cut without a word keeps the tokens that
long at most. PostgreSQL only; on SQLite the look-up is in process, with no round trip to save.

Django has no such cache and none of the maintained token packages keeps one that the database
invalidates; written here for that reason.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

CHANNEL = "pod_auth"
CHECK_SECONDS = 30.0
RETRY_SECONDS = 2.0
# Enough for every client of an installation; past it the cache starts over.
MAX_TOKENS = 10_000


class TokenCache:
    """Values read for tokens, by key, valid while `generation` (the notices seen) has not moved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[int, Any]] = {}
        self._generation = 0
        self._listening = False
        self._pid: int | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def generation(self) -> int | None:
        """The notices seen so far, or None while nothing may be kept (the listener is not connected)."""
        with self._lock:
            return self._generation if self._listening else None

    def get(self, key: str) -> Any | None:
        with self._lock:
            kept = self._kept.get(key)
            return kept[1] if kept is not None and self._listening and kept[0] == self._generation else None

    def put(self, key: str, value: Any, generation: int) -> None:
        """Keep `value`, read after `generation()` answered `generation`, unless a notice came since."""
        with self._lock:
            if self._listening and generation == self._generation:
                if len(self._kept) >= MAX_TOKENS:
                    self._kept = {}
                self._kept[key] = (generation, value)

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._kept = {}

    def listen(self, connect: Callable[[], psycopg.Connection]) -> None:
        """Start the listener thread of this process, once (again in a forked child)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._listening, self._kept = os.getpid(), False, {}
            self._stopped = threading.Event()
            self._thread = threading.Thread(target=self._listen, args=(connect, self._stopped),
                                            name="pod-token-notices", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (the thread ends within a second or two); nothing is kept from now on."""
        with self._lock:
            self._stopped.set()
            self._listening, self._kept, self._pid = False, {}, None
            thread = self._thread
        if thread is not None:
            thread.join(RETRY_SECONDS + 5)

    def _listen(self, connect: Callable[[], psycopg.Connection], stopped: threading.Event) -> None:
        while not stopped.is_set():
            try:
                with connect() as listener:
                    listener.execute(f"LISTEN {CHANNEL}")
                    self._connected(True, stopped)
                    checked = time.monotonic()
                    while not stopped.is_set():
                        # Woken each second to see whether it was stopped.
                        for _ in listener.notifies(timeout=1.0):
                            self.forget()
                        if time.monotonic() - checked >= CHECK_SECONDS:
                            listener.execute("SELECT 1")  # a connection gone shows here
                            checked = time.monotonic()
            except Exception:
                logger.warning("Token notices: the listening connection failed; tokens are read for each "
                               "request until it is back", exc_info=True)
            finally:
                self._connected(False, stopped)
            stopped.wait(RETRY_SECONDS)

    def _connected(self, listening: bool, stopped: threading.Event) -> None:
        with self._lock:
            self._generation += 1
            self._kept = {}
            self._listening = listening and not stopped.is_set()


_cache = TokenCache()


def token_cache(alias: str) -> TokenCache | None:
    """The cache for a request's token on this database, listening; None where tokens are not kept
    (API_TOKEN_CACHE off, not PostgreSQL, or inside a transaction)."""
    connection = connections[alias]
    if not settings.API_TOKEN_CACHE or connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    _cache.listen(lambda: _connect(alias))
    return _cache


def stop_listening() -> None:
    _cache.stop()


def _connect(alias: str) -> psycopg.Connection:
    params = connections[alias].get_connection_params()
    return psycopg.connect(**params, autocommit=True)
