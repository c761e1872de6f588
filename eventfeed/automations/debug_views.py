"""The automation page's debugging parts: its live state, "Test an event", its recent evaluations."""

from __future__ import annotations

import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from . import debugging
from .models import Automation
from .triggers import TriggerError


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


def debug_context(automation: Automation, test_form: TestEventForm | None = None, test_result: dict | None = None) -> dict:
    return {
        "live_state": debugging.live_state(automation),
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
