"""Reads from a PostgreSQL streaming replica (DATABASE_READ_URL), everything else on the primary.

Nothing reads the replica unless it asks to: the views that show stored events (the feed, the
event page, the read APIs, exports) are marked `@reads_from_replica`, and only their queries go
there. Ingest, automations, sign-in, settings pages and every write stay on the primary, so code
that must see its own writes never meets the replica's lag.

A browser that has just written something (any unsafe request to a view that is not a read API)
carries a short-lived cookie, and its reads stay on the primary for
EVENTFEED_READ_YOUR_WRITES_SECONDS. While the replica lags, a view that finds nothing where the
primary may have something asks the primary (the event page for an event just pushed live; the
feed's catch-up after a reconnect reads the primary to begin with).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps

from django.conf import settings
from django.db import connections

REPLICA = "replica"
PRIMARY_COOKIE = "eventfeed_primary_until"

_replica_ok: ContextVar[bool] = ContextVar("eventfeed_replica_ok", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return REPLICA if _replica_ok.get() and replica_configured() else "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica is a physical copy of the primary: it is never migrated itself.
        return db == "default"


@contextmanager
def replica_reads(on: bool = True) -> Iterator[None]:
    """ORM reads inside go to the replica (when one is configured and `on`)."""
    token = _replica_ok.set(on and replica_configured())
    try:
        yield
    finally:
        _replica_ok.reset(token)


def primary_reads():
    return replica_reads(False)


def reading_replica() -> bool:
    return _replica_ok.get()


def pinned_to_primary(request) -> bool:
    try:
        return float(request.COOKIES.get(PRIMARY_COOKIE, 0)) > time.time()
    except ValueError:
        return False


def reads_from_replica(view=None, *, unless: Callable | None = None):
    """Run the view's reads on the replica, except for a browser that has just written and for
    requests `unless(request)` says must read the primary."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            request.reads_replica = True
            on = not pinned_to_primary(request) and not (unless and unless(request))
            with replica_reads(on):
                return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


class PrimaryAfterWriteMiddleware:
    """Marks a browser that wrote something, so that its next reads see it (read-your-writes)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (replica_configured() and request.method not in ("GET", "HEAD", "OPTIONS")
                and not getattr(request, "reads_replica", False)):
            seconds = settings.EVENTFEED_READ_YOUR_WRITES_SECONDS
            response.set_cookie(PRIMARY_COOKIE, f"{time.time() + seconds:.3f}", max_age=seconds, httponly=True, samesite="Lax")
        return response


def replica_lag_seconds() -> float | None:
    """How far the replica's replay is behind (0 when it has replayed everything it received),
    or None without a replica."""
    if not replica_configured():
        return None
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
            "ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END"
        )
        lag = cursor.fetchone()[0]
    return float(lag) if lag is not None else None
