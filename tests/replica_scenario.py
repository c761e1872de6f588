"""Run by tests/test_replica.py in a process of its own, with DATABASE_URL set to a private primary
and DATABASE_READ_URL to its streaming replica (REPLICA_ADMIN_URL: the replica as superuser, to
pause and resume its replay). Prints each step; exits non-zero at the first that fails."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventfeed.settings")
django.setup()

import psycopg  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from eventfeed.dbrouter import PRIMARY_COOKIE, replica_lag_seconds  # noqa: E402
from eventfeed.events.ingest import ingest  # noqa: E402
from eventfeed.events.schema import validate_event  # noqa: E402

admin = psycopg.connect(os.environ["REPLICA_ADMIN_URL"], autocommit=True)


def step(text: str) -> None:
    print("-", text, flush=True)


def store(name: str, minutes_ago: float = 0) -> str:
    raw = {"id": str(uuid.uuid4()), "event": name, "resource": {"prefect.resource.id": "acme.replica.1"},
           "occurred": (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat()}
    event, problems = validate_event(raw)
    assert not problems, problems
    ingest([event])
    return raw["id"]


def caught_up(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = admin.execute("SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()").fetchone()
        if row[0]:
            return
        time.sleep(0.1)
    raise AssertionError("the replica did not catch up")


def on_replica(event_id: str) -> bool:
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event WHERE id = %s", [event_id])
        return cursor.fetchone()[0] == 1


setup_test_environment()
user = get_user_model().objects.create_user("ops", password="ops-password-1")
browser = Client()
browser.force_login(user)
first = store("acme.replica.first", minutes_ago=1)
caught_up()
assert on_replica(first)

step("the feed, the read API and the event page answer from the replica once it has the event")
assert first in browser.get("/events/").content.decode()
api = browser.post("/api/events/filter", "{}", content_type="application/json").json()
assert [e["id"] for e in api["events"]] == [first]

step("the replica stops replaying: an event stored now is on the primary only")
admin.execute("SELECT pg_wal_replay_pause()")
while admin.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != "paused":
    time.sleep(0.05)
second = store("acme.replica.second")
time.sleep(1.2)
assert not on_replica(second)
lag = replica_lag_seconds()
assert lag is not None and lag > 1, lag
step(f"replica lag reported: {lag:.1f} s, and shown on the storage page")
storage_page = browser.get("/settings/storage/").content.decode()
assert "behind the primary" in storage_page, storage_page[:500]

step("feed page and read API show what the replica has (they read it)")
page = browser.get("/events/").content.decode()
assert first in page and second not in page
api = browser.post("/api/events/filter", "{}", content_type="application/json").json()
assert [e["id"] for e in api["events"]] == [first]
export = b"".join(browser.post("/api/events/export", "{}", content_type="application/json").streaming_content)
assert [json.loads(line)["id"] for line in export.splitlines()] == [first]

step("the event page of the event pushed live falls back to the primary")
r = browser.get(f"/events/{second}/")
assert r.status_code == 200 and second in r.content.decode()
assert browser.get(f"/events/{uuid.uuid4()}/").status_code == 404

step("the feed's catch-up after a reconnect reads the primary: no gap")
from eventfeed.events.forms import cursor_for  # noqa: E402
from eventfeed.events.models import Event  # noqa: E402

cursor = cursor_for(Event.objects.get(id=first))
rows = browser.get("/events/", {"partial": "rows", "after": cursor}).content.decode()
assert second in rows

step("a browser that has just written reads the primary (read-your-writes)")
r = browser.post("/settings/storage/", {"pattern": "acme.replica.*", "days": "3"})
assert r.status_code == 302 and PRIMARY_COOKIE in r.cookies
assert second in browser.get("/events/").content.decode()
other = Client()
other.force_login(user)
assert second not in other.get("/events/").content.decode()

step("replay resumes: every reader sees the event")
admin.execute("SELECT pg_wal_replay_resume()")
caught_up()
assert second in other.get("/events/").content.decode()
assert replica_lag_seconds() == 0
print("replica scenario: all steps passed", flush=True)
sys.exit(0)
