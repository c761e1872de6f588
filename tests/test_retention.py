"""Retention: prune_events, the per-name overrides, and counts that stay true after pruning."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from eventfeed.events import retention
from eventfeed.events.filters import EventFilter
from eventfeed.events.models import Event, EventCount, EventResource, RetentionOverride
from eventfeed.events.queries import count_by_time, histogram
from tests.conftest import is_postgres, make_event, store

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
FLOW = {"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow"}


def at(days: float, name: str = "acme.order.created", n: int = 1) -> list[dict]:
    return [make_event(name, f"acme.thing.{days}.{i}", occurred=NOW - timedelta(days=days, seconds=i), related=[FLOW])
            for i in range(n)]


def stored_names() -> list[tuple[str, str]]:
    return sorted((e.occurred.date().isoformat(), e.event) for e in Event.objects.all())


def test_it_removes_whole_days_older_than_the_default_and_keeps_the_rest(settings):
    settings.EVENTFEED_RETENTION_DAYS = 7
    store(*at(10), *at(8), *at(7), *at(1))
    plans = retention.prune(NOW)
    # A day goes once all of it is older than 7 days: Nov 22 ends Nov 23, 7 days before Nov 30.
    assert [str(p.day) for p in plans] == ["2026-11-20", "2026-11-22"]
    assert stored_names() == [("2026-11-23", "acme.order.created"), ("2026-11-29", "acme.order.created")]
    assert EventResource.objects.count() == 4  # a primary and a related row for each kept event
    assert retention.prune(NOW) == []


def test_it_applies_overrides_shorter_and_longer_the_most_specific_winning(settings, owner):
    settings.EVENTFEED_RETENTION_DAYS = 7
    settings.EVENTFEED_RETENTION_OVERRIDES = {"prefect.flow-run.heartbeat": 1, "acme.audit.*": 365}
    RetentionOverride.objects.create(pattern="acme.audit.login", days=2, updated_by=owner)
    store(
        *at(10, "acme.audit.export"), *at(10, "acme.audit.login", 3), *at(10),
        *at(3, "prefect.flow-run.heartbeat", 4), *at(3),
        *at(0.25, "prefect.flow-run.heartbeat"),
    )
    plans = {str(p.day): p for p in retention.plan(NOW)}
    assert plans["2026-11-20"].names == ["acme.audit.login", "acme.order.created"]
    assert plans["2026-11-20"].kept == ["acme.audit.export"]
    assert plans["2026-11-27"].names == ["prefect.flow-run.heartbeat"]
    if is_postgres():
        # Most of each day goes: its kept rows are copied into a new partition instead.
        assert {p.action for p in plans.values()} == {"rewrite"}
    retention.prune(NOW)
    assert stored_names() == [
        ("2026-11-20", "acme.audit.export"), ("2026-11-27", "acme.order.created"), ("2026-11-30", "prefect.flow-run.heartbeat"),
    ]
    kept = set(Event.objects.values_list("id", flat=True))
    assert set(EventResource.objects.values_list("event_id", flat=True)) == kept


def test_it_deletes_the_few_rows_that_go_from_a_day_that_mostly_stays(settings):
    settings.EVENTFEED_RETENTION_OVERRIDES = {"prefect.flow-run.heartbeat": 1}
    store(*at(3, "prefect.flow-run.heartbeat"), *at(3, n=5))
    [p] = retention.plan(NOW)
    assert (p.action, p.names, p.events) == ("delete", ["prefect.flow-run.heartbeat"], 1)
    retention.prune(NOW)
    assert Event.objects.filter(event="prefect.flow-run.heartbeat").count() == 0
    assert Event.objects.count() == 5 and EventResource.objects.count() == 10


def test_it_keeps_counts_and_the_histogram_equal_to_what_is_kept(settings):
    settings.EVENTFEED_RETENTION_OVERRIDES = {"acme.audit.*": 365}
    store(*at(9, n=4), *at(9, "acme.audit.export", 2), *at(2, n=3))
    retention.prune(NOW)
    assert Event.objects.count() == 5
    assert sum(EventCount.objects.filter(width=3600).values_list("count", flat=True)) == 5
    f = EventFilter(since=NOW - timedelta(days=12), until=NOW)
    _, buckets, _ = histogram(f)
    assert sum(b.count for b in buckets) == 5
    days = count_by_time(f, 86400)
    assert {b.start.date().isoformat(): b.count for b in days if b.count} == {"2026-11-21": 2, "2026-11-28": 3}


def test_it_prints_without_removing_on_a_dry_run_and_removes_with_the_command(settings, capsys, monkeypatch):
    settings.EVENTFEED_RETENTION_OVERRIDES = {"prefect.flow-run.heartbeat": 1}
    monkeypatch.setattr(retention.timezone, "now", lambda: NOW)
    store(*at(9, n=3), *at(3, "prefect.flow-run.heartbeat"), *at(3))
    call_command("prune_events", "--dry-run")
    out = capsys.readouterr().out
    assert "overrides: prefect.flow-run.heartbeat 1 d" in out
    assert "would 2026-11-21:" in out and "would 2026-11-27: 1 events (prefect.flow-run.heartbeat)" in out
    assert Event.objects.count() == 5
    call_command("prune_events")
    out = capsys.readouterr().out
    assert "2026-11-27: 1 events (prefect.flow-run.heartbeat)" in out and "Removed" in out
    assert Event.objects.count() == 1
    call_command("prune_events")
    assert "Nothing has expired." in capsys.readouterr().out


def test_it_deletes_in_bounded_batches_on_sqlite(settings, monkeypatch):
    if is_postgres():
        pytest.skip("PostgreSQL drops partitions")
    monkeypatch.setattr(retention, "BATCH", 2)
    store(*at(9, n=5), *at(1))
    [p] = retention.prune(NOW)
    assert p.action == "delete" and p.events == 5
    assert Event.objects.count() == 1 and EventResource.objects.count() == 2


def test_it_reads_overrides_from_the_environment_and_fails_fast_on_a_bad_one(monkeypatch):
    from eventfeed.settings import env_day_overrides

    monkeypatch.setenv("X_OVERRIDES", "prefect.flow-run.heartbeat=1, acme.audit.*=365")
    assert env_day_overrides("X_OVERRIDES") == {"prefect.flow-run.heartbeat": 1, "acme.audit.*": 365}
    for bad in ("acme.audit.*", "acme.*.x=3", "a=0", "a=two", "=5"):
        monkeypatch.setenv("X_OVERRIDES", bad)
        with pytest.raises(ImproperlyConfigured, match="X_OVERRIDES"):
            env_day_overrides("X_OVERRIDES")
    assert retention.pattern_problem("acme.audit.*") is None
    assert retention.pattern_problem("acme.*.x") and retention.pattern_problem("*") and retention.days_problem(0)
