"""Shared fixtures: personas (a signed-in user, another user, anonymous), API keys, events."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test import TransactionTestCase

from eventfeed.events.ingest import ingest
from eventfeed.events.models import ApiKey
from eventfeed.events.schema import validate_event


def _deadlocked(error: BaseException | None) -> bool:
    while error is not None:
        if type(error).__name__ == "DeadlockDetected":
            return True
        error = error.__cause__
    return False


def _flush_retrying_deadlocks(flush):
    """A transactional test ends with a flush: one TRUNCATE of every table, locking them in its
    order. The Daphne processes some tests serve from keep working between requests (the
    automation service's catch-up and ticker read their tables in transactions every second), and
    PostgreSQL may end the flush as the victim of a deadlock with one of them (seen once in CI):
    the flush is tried again rather than leaving the next test a database that was not emptied."""

    def teardown(self):
        for attempt in range(5):
            try:
                return flush(self)
            except Exception as error:
                if attempt == 4 or not _deadlocked(error):
                    raise
                time.sleep(0.2)

    return teardown


TransactionTestCase._fixture_teardown = _flush_retrying_deadlocks(TransactionTestCase._fixture_teardown)


def make_event(event: str = "acme.order.shipped", resource: str = "acme.order.1", *, related=None, payload=None,
               occurred: datetime | None = None, id=None, follows=None, **labels) -> dict:
    """A valid event dict in Prefect's shape."""
    return {
        "id": str(id or uuid.uuid4()),
        "occurred": (occurred or datetime.now(timezone.utc)).isoformat(),
        "event": event,
        "resource": {"prefect.resource.id": resource, **labels},
        "related": related or [],
        "payload": payload if payload is not None else {},
        "follows": str(follows) if follows else None,
    }


def store(*events: dict):
    """Validate and ingest event dicts; returns the IngestResult."""
    clean = []
    for raw in events:
        event, problems = validate_event(raw)
        assert not problems, problems
        clean.append(event)
    return ingest(clean)


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user("alice", password="password-alice-1")


@pytest.fixture
def other_user(django_user_model):
    return django_user_model.objects.create_user("bob", password="password-bob-1")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def api_key(db) -> str:
    _, raw = ApiKey.create("test producer")
    return raw


@pytest.fixture
def auth(api_key) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}


@pytest.fixture
def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def minutes_ago(now):
    return lambda m: now - timedelta(minutes=m)


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets its own channel layer and live hub: an async test's event loop closes
    with the test, and a group member left behind by it would break the next test's sends."""
    from channels.layers import channel_layers

    from eventfeed.events import live

    channel_layers.backends.clear()
    live._hubs.clear()
    yield
    channel_layers.backends.clear()
    live._hubs.clear()


@pytest.fixture(autouse=True)
def fresh_partition_cache():
    """A test's partitions vanish with its transaction: the process must not remember them."""
    from eventfeed.events import partitions

    partitions.forget()
    yield
    partitions.forget()


@pytest.fixture(autouse=True)
def no_wrong_key_count():
    """Tests send wrong keys from 127.0.0.1 on purpose; a count left by earlier tests (in Redis,
    for ten minutes) would turn their 403s into 429s."""
    from eventfeed import throttle

    throttle.forget("127.0.0.1")
