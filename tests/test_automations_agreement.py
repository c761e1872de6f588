"""Test an event and Replay agree with the live engine: generated triggers (reactive, proactive,
after/expect, for_each, compound and sequence) over generated event streams, evaluated live
(stored, published one by one, the clock ticking at every deadline as the running service does)
and replayed from the store, fire the same firings for the same events and buckets; and before
each event, "Test an event" says exactly what the live engine then does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings, strategies as st

from eventfeed.automations import engine, store
from eventfeed.automations.debugging import current_state
from eventfeed.automations.explain import explain_event
from eventfeed.automations.models import Firing, TriggerState
from eventfeed.automations.replay import replay
from eventfeed.automations.triggers import parse_trigger
from eventfeed.events.filters import EventFilter, Matchable, ResourceCondition
from eventfeed.events.ingest import ingest
from eventfeed.events.wire import wire
from eventfeed.events.schema import validate_event

NAMES = ["a.start", "a.beat", "a.fail"]
# In the future: the live ticker takes a state row whose deadline (set to the wall clock when
# the automation is saved) is before the tick's time.
T0 = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=0)


@st.composite
def event_triggers(draw, prefix: str):
    posture = draw(st.sampled_from(["Reactive", "Proactive"]))
    expect = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=2, unique=True))
    after = draw(st.sampled_from([[], [], ["a.start"]]))
    within = draw(st.sampled_from([10, 30, 60] if posture == "Proactive" else [0, 10, 30, 60]))
    match = draw(st.sampled_from([{}, {"prefect.resource.id": f"{prefix}.r1"}, {"prefect.resource.id": f"{prefix}.*"}]))
    return {"type": "event", "posture": posture, "expect": expect, "after": after, "within": within, "match": match,
            "for_each": draw(st.sampled_from([[], ["prefect.resource.id"]])), "threshold": draw(st.integers(1, 3))}


@st.composite
def triggers(draw, prefix: str):
    kind = draw(st.sampled_from(["event", "event", "compound", "sequence"]))
    if kind == "event":
        return draw(event_triggers(prefix))
    children = [draw(event_triggers(prefix)) for _ in range(2)]
    out = {"type": kind, "triggers": children, "within": draw(st.sampled_from([None, 60, 120]))}
    if kind == "compound":
        out["require"] = draw(st.sampled_from(["any", "all", 2]))
    return out


@st.composite
def scenarios(draw):
    # Every example is rolled back: the same names and ids serve each.
    prefix = "agree"
    trigger = draw(triggers(prefix))
    at, events = 0, []
    for i in range(draw(st.integers(1, 12))):
        at += draw(st.sampled_from([0, 1, 5, 9, 15, 40]))
        events.append({
            "id": str(uuid.UUID(int=i + 1)),
            "occurred": (T0 + timedelta(seconds=at)).isoformat(),
            "event": draw(st.sampled_from(NAMES)),
            "resource": {"prefect.resource.id": f"{prefix}.{draw(st.sampled_from(['r1', 'r2']))}"},
            "related": [], "payload": {},
        })
    return prefix, trigger, events, at


def firing_keys(rows) -> list:
    return sorted(rows, key=repr)


def tick_until(automation, limit: datetime) -> None:
    """The running service's clock: a tick at every deadline up to `limit`."""
    for _ in range(1000):
        due = TriggerState.objects.get(automation=automation).next_due
        if due is None or due > limit:
            return
        engine.tick(now=max(due, T0))


@pytest.mark.django_db(transaction=False)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_test_replay_and_the_live_engine_agree(scenario):
    prefix, trigger_json, raw_events, last = scenario
    clean = sorted((validate_event(raw)[0] for raw in raw_events), key=lambda e: (e.occurred, str(e.id)))
    end = T0 + timedelta(seconds=last + 120)
    with transaction.atomic():
        automation = store.save_automation(store.parse_automation({"name": "generated", "trigger": trigger_json}))
        trigger, _ = parse_trigger(automation.trigger)
        clean = sorted(ingest(clean).stored, key=lambda e: (e.occurred, str(e.id)))
        tick_until(automation, T0)
        for event in clean:
            tick_until(automation, event.occurred)
            told = explain_event(trigger, current_state(automation), Matchable.from_wire(wire(event)))
            fired = engine.evaluate([wire(event)])
            assert told["would_fire"] == any(f.kind == "triggered" for f in fired), (trigger_json, told)
            assert told["would_resolve"] == any(f.kind == "resolved" for f in fired), (trigger_json, told)
        tick_until(automation, end)
        live = firing_keys((f.kind, str(f.triggering_event_id) if f.triggering_event_id else None, f.labels)
                           for f in Firing.objects.filter(automation=automation))
        only_these = EventFilter(since=T0, until=end, resources=(ResourceCondition("resource", id_prefixes=(prefix + ".",)),))
        result = replay(trigger, only_these, automation=automation, now=end)
        replayed = firing_keys((e["kind"], e["event"]["id"] if e["event"] else None, e["labels"]) for e in result["timeline"])
        assert replayed == live, trigger_json
        transaction.set_rollback(True)
