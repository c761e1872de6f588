"""The automation page's context: the automation, its sentence and history, and its debugging
parts (live state, "Test an event", replay, recent evaluations). The page's views and its
debugging views both draw the page with it."""

from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.http import Http404

from . import debugging, records
from eventfeed.events.queries import resource_names

from .describe import describe, resource_ids
from .forms import ReplayForm, TestEventForm
from .masking import mask_secrets
from .models import ActionRun, Automation, Firing
from .triggers import TriggerError, parse_trigger

HISTORY = 50


def automation_or_404(automation_id: str) -> Automation:
    try:
        automation = Automation.objects.filter(pk=uuid.UUID(automation_id)).first()
    except ValueError:
        automation = None
    if automation is None:
        raise Http404("No automation has this id.")
    return automation


def sentence(trigger_json: dict) -> str:
    try:
        trigger = parse_trigger(trigger_json)[0]
        return describe(trigger, resource_names(resource_ids(trigger)))
    except TriggerError:
        return "This trigger is not valid any more: edit it."


def detail_context(automation: Automation) -> dict:
    firings = list(Firing.objects.filter(automation=automation).order_by("-at")[:HISTORY])
    runs: dict = {}
    for run in ActionRun.objects.filter(firing__in=firings):
        runs.setdefault(run.firing_id, []).append(run)
    ctx = {
        "automation": automation,
        "sentence": sentence(automation.trigger),
        "trigger_json": json.dumps(automation.trigger, indent=2),
        "actions_json": json.dumps(mask_secrets(automation.actions), indent=2, ensure_ascii=False),
        "history": [(f, sorted(runs.get(f.id, []), key=lambda r: r.index)) for f in firings],
        "failed_runs": ActionRun.objects.filter(automation=automation, status=ActionRun.FAILED, reruns__isnull=True).order_by("-created")[:5],
        **debug_context(automation),
    }
    return ctx


def debug_context(automation: Automation, test_form: TestEventForm | None = None, test_result: dict | None = None,
                  replay_form: ReplayForm | None = None, replay_result: dict | None = None) -> dict:
    return {
        "replay_form": replay_form or ReplayForm(),
        "replay_result": replay_result,
        "live_state": debugging.live_state(automation),
        "evaluations": records.for_automation(automation),
        "evaluations_kept_hours": settings.EVENTFEED_EVALUATIONS_KEPT_HOURS,
        "test_form": test_form or TestEventForm(),
        "test_result": test_result,
    }
