"""Day partitions on PostgreSQL: created ahead and on demand, late events, ids, rewrites."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from django.test import override_settings
from django.db import IntegrityError, connection, transaction

from eventfeed.events import partitions
from eventfeed.events.filters import EventFilter
from eventfeed.events.models import Event, EventResource
from tests.conftest import is_postgres, make_event, store

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def postgres_only():
    if not is_postgres():
        pytest.skip("SQLite is not partitioned")


def partitions_of(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def test_it_creates_the_coming_days_ahead_in_both_tables():
    now = datetime(2031, 3, 30, 23, 59, tzinfo=timezone.utc)
    created = partitions.ensure_ahead(now, days=3)
    assert created == [date(2031, 3, 30), date(2031, 3, 31), date(2031, 4, 1), date(2031, 4, 2)]
    assert {"events_event_p20310330", "events_event_p20310402"} <= partitions_of("events_event")
    assert {"events_eventresource_p20310330", "events_eventresource_p20310402"} <= partitions_of("events_eventresource")
    assert partitions.ensure_ahead(now, days=3) == []


@pytest.mark.parametrize("occurred", [
    datetime(2, 1, 1, tzinfo=timezone.utc),
    datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
    datetime.now(timezone.utc) - timedelta(days=400),
    datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0),  # a day's first instant
])
@override_settings(EVENTFEED_MAX_FUTURE_SECONDS=0)  # the year 9998 too
def test_it_stores_an_event_of_any_supported_time_in_its_days_partition(occurred):
    raw = make_event("acme.backfill.loaded", "acme.backfill.1", occurred=occurred)
    assert store(raw).new == 1
    day = partitions.day_of(occurred)
    assert partitions.partition_name("events_event", day) in partitions_of("events_event")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {partitions.partition_name('events_eventresource', day)}")
        assert cursor.fetchone()[0] == 1
    events, _ = EventFilter(since=occurred - timedelta(seconds=1), until=occurred).page(limit=5)
    assert [str(e.id) for e in events] == [raw["id"]]


def test_it_recreates_a_day_another_process_dropped_when_a_late_event_arrives():
    occurred = datetime.now(timezone.utc) - timedelta(days=30)
    store(make_event(occurred=occurred))
    day = partitions.day_of(occurred)
    # Retention in another process drops the day; this process still believes it exists.
    with connection.cursor() as cursor:
        for table, _, _ in partitions.TABLES:
            cursor.execute(f"DROP TABLE {partitions.partition_name(table, day)}")
    assert day in partitions._known
    assert store(make_event(occurred=occurred + timedelta(minutes=1))).new == 1
    assert Event.objects.count() == 1


def test_it_keeps_ids_unique_for_resends_even_with_another_clock(now):
    raw = make_event(occurred=now)
    assert store(raw).new == 1
    assert store(raw).duplicates == 1
    # The same id sent again with a time an hour later lands in the same or the next partition:
    # still found, still a duplicate.
    assert store({**raw, "occurred": (now + timedelta(hours=23)).isoformat()}).duplicates == 1
    assert Event.objects.filter(id=raw["id"]).count() == 1


def test_it_refuses_a_second_row_with_the_same_id_and_time_at_the_primary_key(now):
    raw = make_event(occurred=now)
    store(raw)
    event = Event.objects.get(id=raw["id"])
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.bulk_create([Event(id=event.id, occurred=event.occurred, received=now, event="x",
                                         resource_id="x", resource={}, words=[])])


def test_it_rewrites_a_day_keeping_named_rows_with_every_index_and_the_primary_key():
    occurred = datetime.now(timezone.utc) - timedelta(days=20)
    store(make_event("acme.audit.export", occurred=occurred), *[make_event(occurred=occurred) for _ in range(3)])
    day = partitions.day_of(occurred)
    partitions.keep_only(day, ["acme.audit.export"])
    assert list(Event.objects.values_list("event", flat=True)) == ["acme.audit.export"]
    assert EventResource.objects.count() == 1
    name = partitions.partition_name("events_event", day)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [name])
        assert cursor.fetchone()[0] == 1 + len(Event._meta.indexes)  # the primary key and those of Event.Meta
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                       [partitions.partition_name("events_eventresource", day)])
        assert cursor.fetchone()[0] == 5
    kept = Event.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.bulk_create([Event(id=kept.id, occurred=kept.occurred, received=kept.received, event="x",
                                         resource_id="x", resource={}, words=[])])


def test_it_finds_an_event_by_id_whichever_partition_holds_it(owner_client):
    old = make_event(occurred=datetime.now(timezone.utc) - timedelta(days=3))
    store(old, make_event())
    r = owner_client.get(f"/events/{old['id']}/")
    assert r.status_code == 200 and old["id"] in r.content.decode()
    assert owner_client.get(f"/events/{uuid.uuid4()}/").status_code == 404


def test_it_drops_days_by_detaching_first_and_finishes_what_a_dead_process_left_detached():
    old = datetime.now(timezone.utc) - timedelta(days=40)
    store(make_event(occurred=old), make_event(occurred=old - timedelta(days=1)))
    days = [partitions.day_of(old), partitions.day_of(old - timedelta(days=1))]
    # A pruner that died between its two transactions: one day detached and renamed, not dropped.
    left = partitions.partition_name("events_event", days[1])
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE events_event DETACH PARTITION "{left}"')
        cursor.execute(f'ALTER TABLE "{left}" RENAME TO "{left}{partitions.GONE}"')
    gone, removed = partitions.drop(days[:1])
    assert gone >= 0 and removed >= 0
    for table, _, _ in partitions.TABLES:
        assert partitions.partition_name(table, days[0]) not in partitions_of(table)
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", ["%" + partitions.GONE])
        assert cursor.fetchall() == []
    assert Event.objects.filter(occurred__lt=old + timedelta(days=1)).count() == 0
    # The days can be written again: they are created anew, nothing named like them is in the way.
    assert store(make_event(occurred=old), make_event(occurred=old - timedelta(days=1))).new == 2
