"""The scenarios of Prefect's automation bug reports, through the live engine (stored events,
the evaluator, the ticker): what Prefect did, and what Eventfeed does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations import engine, store
from eventfeed.automations.models import Firing
from eventfeed.events.wire import wire
from tests.conftest import make_event, store as store_events

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def automation(trigger: dict):
    return store.save_automation(store.parse_automation({"name": "scenario", "trigger": trigger}))


def send(*events):
    engine.evaluate([wire(e) for e in store_events(*events).stored])


def tick_through(start: datetime, end: datetime, every: float = 1.0) -> None:
    """The running service's clock: a tick every second from start to end."""
    at = start
    while at <= end:
        engine.tick(at)
        at += timedelta(seconds=every)


def kinds(a) -> list[tuple[str, dict]]:
    return [(f.kind, f.labels) for f in Firing.objects.filter(automation=a).order_by("at", "kind")]


def test_18838_a_heartbeat_watch_fires_once_per_silence_not_erratically(db):
    # prefect#18838: a proactive "no heartbeat within 60 s" trigger fired at odd times while
    # heartbeats kept coming, and again and again during one outage.
    a = automation({"match": {"prefect.resource.id": "worker.1"}, "expect": ["worker.heartbeat"], "posture": "Proactive",
                    "within": 60})
    t0 = NOW - timedelta(minutes=20)
    engine.tick(t0)  # the window starts rolling when the automation is loaded
    beats = [t0 + timedelta(seconds=s) for s in range(0, 300, 30)]  # every 30 s for 5 minutes
    for at in beats:
        tick_through(at - timedelta(seconds=29), at, every=10)
        send(make_event("worker.heartbeat", "worker.1", occurred=at))
    assert kinds(a) == []
    silence_end = beats[-1] + timedelta(minutes=10)  # a 10-minute outage
    tick_through(beats[-1], silence_end, every=5)
    assert kinds(a) == [("triggered", {})]  # once, not once per window
    send(make_event("worker.heartbeat", "worker.1", occurred=silence_end))
    assert kinds(a) == [("triggered", {}), ("resolved", {})]


@pytest.mark.parametrize("require", ["any", "all"])
def test_17685_a_proactive_trigger_inside_a_compound_trigger_fires(db, require):
    # prefect#17685: a compound trigger whose child is proactive never fired.
    stuck = {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "after": ["prefect.flow-run.Running"],
             "expect": ["prefect.flow-run.Completed"], "for_each": ["prefect.resource.id"], "posture": "Proactive", "within": 600}
    running = {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Running"]}
    a = automation({"type": "compound", "require": require, "within": 3600, "triggers": [stuck, running] if require == "all" else [stuck]})
    started = NOW - timedelta(minutes=15)
    send(make_event("prefect.flow-run.Running", "prefect.flow-run.1", occurred=started))
    engine.tick(started + timedelta(seconds=599))
    assert kinds(a) == []
    engine.tick(started + timedelta(seconds=600))
    assert kinds(a) == [("triggered", {"prefect.resource.id": "prefect.flow-run.1"})]


def test_16545_a_run_that_stays_running_for_ten_hours_fires(db):
    # prefect#16545: "flow run stayed Running for 10 h" never fired (the window outlived the
    # server's in-memory state and its bucket expiry).
    a = automation({"match": {"prefect.resource.id": "prefect.flow-run.*"}, "after": ["prefect.flow-run.Running"],
                    "expect": ["prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
                    "for_each": ["prefect.resource.id"], "posture": "Proactive", "within": 36000})
    started = NOW - timedelta(hours=11)
    send(make_event("prefect.flow-run.Running", "prefect.flow-run.stuck", occurred=started),
         make_event("prefect.flow-run.Running", "prefect.flow-run.fine", occurred=started))
    send(make_event("prefect.flow-run.Completed", "prefect.flow-run.fine", occurred=started + timedelta(hours=2)))
    engine._index = None  # a restart: the evaluator starts from the database
    engine.tick(started + timedelta(hours=9, minutes=59))
    assert kinds(a) == []
    engine.tick(started + timedelta(hours=10))
    assert kinds(a) == [("triggered", {"prefect.resource.id": "prefect.flow-run.stuck"})]


@pytest.mark.parametrize("for_each", [["prefect.resource.id"], []])
def test_11199_n_failures_fire_n_times(db, for_each):
    # prefect#11199: five flow runs failed within a minute and the automation fired once (the
    # window's hidden cooldown, or one bucket for all of them).
    a = automation({"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"],
                    "for_each": for_each, "threshold": 1, "within": 60})
    send(*[make_event("prefect.flow-run.Failed", f"prefect.flow-run.{i}", occurred=NOW - timedelta(seconds=50 - i))
           for i in range(5)])
    fired = kinds(a)
    assert len(fired) == 5
    if for_each:
        assert {labels["prefect.resource.id"] for _, labels in fired} == {f"prefect.flow-run.{i}" for i in range(5)}
