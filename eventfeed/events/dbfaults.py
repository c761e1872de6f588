"""What a database error means to its caller: a conflict worth retrying at once, or an outage to
push back on (503 + Retry-After over HTTP, stop reading on a websocket) until it is over.

Errors from raw psycopg cursors are turned into Django's where those cursors are opened
(ingest.binary_cursor), so callers catch django.db.DatabaseError alone.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Callable, TypeVar

import psycopg
from django.db import DatabaseError, InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

T = TypeVar("T")

# serialization_failure, deadlock_detected: the transaction lost a race and can simply run again.
CONFLICT_SQLSTATES = {"40001", "40P01"}
# What a client is asked to wait before it sends again while the database is away.
RETRY_AFTER_SECONDS = 5
CONFLICT_ATTEMPTS = 5


def sqlstate(exc: BaseException | None) -> str | None:
    while exc is not None:
        code = getattr(exc, "sqlstate", None)
        if code:
            return code
        exc = exc.__cause__
    return None


def is_conflict(exc: BaseException) -> bool:
    return sqlstate(exc) in CONFLICT_SQLSTATES


def is_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or went away (down, restarting, failing over, the pool
    timed out waiting for a connection): nothing is wrong with the request itself."""
    if is_conflict(exc):
        return False
    return isinstance(exc, (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError))


def retrying(work: Callable[[], T]) -> T:
    """Run a transaction again when it lost a deadlock or a serialization race, and once more on
    a fresh connection when the pooled one turned out dead (a database restart leaves every
    pooled connection broken). Inside an outer transaction nothing can be retried: it raises."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return work()
        except DatabaseError as e:
            if connection.in_atomic_block:
                raise
            if is_conflict(e) and attempt < CONFLICT_ATTEMPTS:
                log.info("database conflict (%s), attempt %d: retrying", sqlstate(e), attempt)
                time.sleep(random.uniform(0, 0.02 * 2**attempt))
                continue
            if is_unavailable(e) and attempt == 1:
                connection.close()
                continue
            raise
