"""Histograms and name counts read EventCount where they can, and agree with counting events."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.events import queries
from eventfeed.events.filters import EventFilter, ResourceCondition
from eventfeed.events import models
from eventfeed.events.models import EventCount
from tests.conftest import make_event, store

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc)
NAMES = ["a.x", "a.y", "b.z"]


@pytest.fixture
def spread():
    rng = random.Random(5)
    # Two resources, so that a resource condition selects some of the events, not all.
    events = [make_event(rng.choice(NAMES), f"acme.order.{i % 2}", occurred=T0 + timedelta(seconds=rng.uniform(0, 3 * 86400)))
              for i in range(400)]
    store(*events)
    return events


def raw(f, seconds):
    """Count the events themselves, as if there were no EventCount."""
    return queries._raw_counts(f, seconds)


@pytest.mark.parametrize("seconds", [60, 900, 1800, 3600, 10800, 43200])
@pytest.mark.parametrize("names", [{}, {"prefixes": ("a.",)}, {"names": ("b.z",), "exclude_names": ("a.x",)}])
def test_it_counts_histogram_buckets_from_the_rollup_exactly(spread, seconds, names):
    # Unaligned edges on purpose: the partial buckets at both ends come from the events.
    f = EventFilter(since=T0 + timedelta(hours=5, minutes=7, seconds=13), until=T0 + timedelta(days=2, minutes=41), **names)
    assert queries._rollup_width(f, seconds) is not None
    buckets = queries.count_by_time(f, seconds)
    expected = raw(f, seconds)
    got = {queries.bucket_span(f.since, b.start, seconds)[1]: b.count for b in buckets if b.count}
    assert sum(b.count for b in buckets) == sum(expected.values())
    assert got == {k: v for k, v in expected.items() if v}


def test_it_counts_names_from_the_rollup_exactly(spread):
    f = EventFilter(since=T0 + timedelta(hours=3, minutes=30), until=T0 + timedelta(days=2, hours=1, seconds=5))
    by_events = {r["value"]: r["count"] for r in queries.count_by_event(f)}
    assert dict(queries.name_counts(f)) == by_events


def test_it_counts_from_events_when_the_filter_needs_them(spread):
    f = EventFilter(since=T0, until=T0 + timedelta(days=3), resources=(ResourceCondition(scope="resource", ids=("acme.order.1",)),))
    assert queries._rollup_width(f, 3600) is None
    assert sum(b.count for b in queries.count_by_time(f, 3600)) == 200


def test_it_adds_to_the_counts_on_ingest_and_not_for_duplicates():
    event = make_event("c.one", occurred=T0 + timedelta(seconds=30))
    store(event)
    store(event)
    store(make_event("c.one", occurred=T0 + timedelta(seconds=50)))
    assert EventCount.objects.get(width=60, event="c.one").count == 2
    assert EventCount.objects.get(width=3600, event="c.one").bucket == T0


def test_it_fills_the_counts_of_events_stored_before_them(spread):
    """Migrations 0004 and 0005 count the events a store already holds, like ingest does."""
    import importlib

    from django.db import connection

    expected = {(c.width, c.bucket, c.event): c.count for c in EventCount.objects.all()}
    EventCount.objects.all().delete()
    class Editor:
        """What the migrations' RunPython functions use of a schema editor (SQLite refuses a
        real one inside the test's transaction)."""

        def __init__(self):
            self.connection = connection

        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    importlib.import_module("eventfeed.events.migrations.0004_event_counts").count_stored_events(None, Editor())
    importlib.import_module("eventfeed.events.migrations.0005_label_index_quarter_hour_counts").count_quarter_hours(None, Editor())
    assert {(c.width, c.bucket, c.event): c.count for c in EventCount.objects.all()} == expected


def test_it_counts_an_event_in_the_bucket_the_queries_name_at_a_boundarys_last_microsecond():
    # Far from 1970 a float timestamp has no microseconds left and rounds 00:00:59.999999 up to
    # the next minute; ingest and the queries must both put it in the minute it happened in.
    moment = datetime(1000, 3, 1, 0, 1, tzinfo=timezone.utc) - timedelta(microseconds=1)
    store(make_event("a.edge", occurred=moment))
    rows = {(c.width, c.bucket) for c in EventCount.objects.filter(event="a.edge")}
    assert rows == {(w, models.bucket_start(moment, w)) for w in models.ROLLUP_WIDTHS}
    assert models.bucket_start(moment, 60) == datetime(1000, 3, 1, 0, 0, tzinfo=timezone.utc)
