"""The automation page's debugging parts: its live state, "Test an event", its recent evaluations."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from eventfeed.events.filter_parsers import from_json
from eventfeed.events.filters import FilterError

from . import debugging, records
from .models import Automation
from .replay import ReplayRefused, replay
from .triggers import TriggerError, parse_trigger


class TestEventForm(forms.Form):
    event_id = forms.CharField(required=False, max_length=64, label="A stored event's id")
    event_json = forms.CharField(required=False, label="or an event (JSON)",
                                 widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))

    def clean(self):
        data = super().clean()
        event_id, text = (data.get("event_id") or "").strip(), (data.get("event_json") or "").strip()
        if not event_id and not text:
            raise forms.ValidationError("Give a stored event's id or paste an event's JSON.")
        if event_id:
            event = debugging.stored_test_event(event_id)
            if event is None:
                self.add_error("event_id", "No stored event has this id.")
                return data
        else:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as e:
                self.add_error("event_json", f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
                return data
            try:
                event = debugging.parse_test_event(raw)
            except TriggerError as e:
                self.add_error("event_json", [f"{path}: {rule}" for path, rule in e.problems])
                return data
        data["event"] = event
        return data


class ReplayForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="To (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    filter_json = forms.CharField(required=False, label="Filter (EventFilter JSON, optional)",
                                  widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
    run_actions = forms.BooleanField(required=False, label="Run the actions (record the firings, marked replayed)")

    def clean(self):
        data = super().clean()
        text = (data.get("filter_json") or "").strip()
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError as e:
            self.add_error("filter_json", f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
            return data
        occurred = dict(raw.get("occurred") or {}) if isinstance(raw, dict) else {}
        for key in ("since", "until"):
            if data.get(key):
                occurred[key] = data[key].isoformat()
        if isinstance(raw, dict) and occurred:
            raw = {**raw, "occurred": occurred}
        try:
            data["filter"] = from_json(raw, "filter")
        except FilterError as e:
            self.add_error("filter_json", [f"{path}: {rule}" for path, rule in e.problems])
        return data


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


@require_POST
@login_required
def automation_test(request: HttpRequest, automation_id: str) -> HttpResponse:
    """The page's "Test an event": the automation page again, with the answer."""
    from .views import _automation, detail_context

    automation = _automation(automation_id)
    form = TestEventForm(request.POST)
    result = debugging.test_event(automation, form.cleaned_data["event"]) if form.is_valid() else None
    ctx = {**detail_context(automation), **debug_context(automation, form, result)}
    return render(request, "automations/detail.html", ctx, status=200 if result is not None else 400)


@require_POST
@login_required
def automation_replay(request: HttpRequest, automation_id: str) -> HttpResponse:
    """The page's "Replay": the automation page again, with the timeline."""
    from .views import _automation, detail_context

    automation = _automation(automation_id)
    form = ReplayForm(request.POST)
    result = None
    if form.is_valid():
        try:
            trigger, _ = parse_trigger(automation.trigger)
            result = replay(trigger, form.cleaned_data["filter"], automation=automation,
                            run_actions=form.cleaned_data["run_actions"])
        except (ReplayRefused, TriggerError) as e:
            form.add_error(None, str(e))
    ctx = {**detail_context(automation), **debug_context(automation, replay_form=form, replay_result=result)}
    return render(request, "automations/detail.html", ctx, status=200 if result is not None else 400)


@require_POST
@login_required
def automation_rerun(request: HttpRequest, automation_id: str, run_id: str) -> HttpResponse:
    """Re-run a failed action from the firing history."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from .views import _automation

    automation = _automation(automation_id)
    try:
        debugging.rerun_action(automation, run_id)
    except debugging.RerunRefused as e:
        messages.error(request, f"Not re-run: {e}.")
        return redirect("automation-detail", automation.id)
    messages.success(request, "The action runs again now; its outcome appears in the firing history.")
    return redirect("automation-detail", automation.id)
