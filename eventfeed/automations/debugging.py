"""Reads for "why did it fire, why didn't it": the trigger's live state and an event tried
against it, beside the models (the API and the pages call these)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from eventfeed import audit
from eventfeed.events.filters import Matchable
from eventfeed.events.schema import RESOURCE_ID, validate_event
from eventfeed.events.wire import iso, stored, wire

from . import core, wakeup
from .describe import describe_metric
from .explain import explain_event, resource_checks, state_view
from .metrics import state_view as metric_view
from .models import ActionRun, Automation, TriggerState
from .triggers import TriggerError, parse_trigger


def current_state(automation: Automation) -> dict:
    row = TriggerState.objects.filter(automation=automation).first()
    return (row.state if row is not None else None) or core.new_state()


def parse_test_event(data: Any) -> Matchable:
    """An event to try: Prefect's event JSON; `id` and `occurred` may be left out (a new id,
    now). Bad input raises TriggerError naming the path under `event`."""
    if isinstance(data, dict):
        data = {"id": str(uuid.uuid4()), "occurred": iso(timezone.now()), **data}
    event, problems = validate_event(data)
    if problems:
        raise TriggerError([(_under_event(p.path), p.rule) for p in problems])
    return Matchable.from_wire(wire(event))


def _under_event(path: str) -> str:
    path = path.lstrip(".")
    return "event" if not path else "event" + (path if path.startswith("[") else "." + path)


def stored_test_event(event_id: str) -> Matchable | None:
    data = stored(event_id)
    return Matchable.from_wire(data) if data is not None else None


def test_event(automation: Automation, event: Matchable) -> dict:
    """What the automation's trigger would do with the event now, changing nothing."""
    try:
        trigger, _ = parse_trigger(automation.trigger)
    except TriggerError as e:
        return {"would_fire": False, "reasons": [f"the trigger is not valid: {e}"], "triggers": [], "firings": []}
    if trigger.type == "metric":
        result = metric_test(trigger, current_state(automation), event)
    else:
        result = explain_event(trigger, current_state(automation), event, own_resource_id=automation.resource_id)
    if not automation.enabled:
        result["reasons"].insert(0, "the automation is disabled: the live engine does not evaluate it (this is what it would do enabled)")
    return result


def metric_test(trigger, state: dict, event: Matchable) -> dict:
    """A metric trigger is measured on the clock: an event only moves the metric."""
    view = metric_view(trigger, state)
    covered = trigger.covers(event.event, event.resource, event.related)
    checks = resource_checks(trigger, event.resource, event.related)
    reasons = [c["says"] for c in checks if not c["ok"]]
    if not covered and not reasons:
        reasons.append(f"the {trigger.name} metric does not read {event.event} events")
    if covered:
        reasons.append(f"it counts toward the {trigger.name} metric, which is measured every 10 s over the last "
                       f"{trigger.range:g} s; a single event never fires a metric trigger by itself")
    value = view["value"]
    reasons.append(f"last measured value: {'none' if value is None else f'{value:g}'} "
                   f"(fires when {trigger.operator} {trigger.threshold:g} for {trigger.firing_for:g} s)")
    return {"would_fire": False, "would_resolve": False, "firings": [], "reasons": reasons,
            "triggers": [{"path": trigger.path, "checks": checks, "matched": covered, "outcome": describe_metric(trigger)}],
            "metric": view}


def live_state(automation: Automation) -> dict:
    try:
        trigger, _ = parse_trigger(automation.trigger)
    except TriggerError:
        return {"buckets": [], "composites": [], "next_due": None}
    if trigger.type == "metric":
        return {"buckets": [], "composites": [], "next_due": None, "metric": metric_view(trigger, current_state(automation))}
    return state_view(trigger, current_state(automation), timezone.now().timestamp())


class RerunRefused(Exception):
    pass


def rerun_action(automation: Automation, run_id: str):
    """A new run of a failed action run, for the same firing, due now (it keeps a link to the
    failed one). Refused for a run that did not fail."""
    try:
        run = ActionRun.objects.filter(pk=uuid.UUID(str(run_id)), automation=automation).select_related("firing").first()
    except ValueError:
        run = None
    if run is None:
        raise RerunRefused("this automation has no action run with this id")
    if run.status != ActionRun.FAILED:
        raise RerunRefused(f"only a failed action run can be re-run; this one is {run.status}")
    with transaction.atomic():
        again = ActionRun.objects.create(firing=run.firing, automation=automation, index=run.index, action=run.action,
                                         next_attempt=timezone.now(), rerun_of=run)
        # The action's type and place, not the action: its URL and headers may hold credentials.
        audit.record("automation.action.rerun", {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name},
                     {"run": str(again.id), "rerun_of": str(run.id), "firing": str(run.firing_id),
                      "action_index": run.index, "action_type": run.action.get("type")})

        transaction.on_commit(wakeup.wake_actions)
    return again
