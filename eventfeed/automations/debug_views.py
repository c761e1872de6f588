"""The automation page's debugging actions: "Test an event", "Replay", re-run a failed action;
each draws the page again (detail.py) with its answer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import debugging
from .detail import automation_or_404, debug_context, detail_context
from .forms import ReplayForm, TestEventForm
from .replay import ReplayRefused, replay
from .triggers import TriggerError, parse_trigger


@require_POST
@login_required
def automation_test(request: HttpRequest, automation_id: str) -> HttpResponse:
    """The page's "Test an event": the automation page again, with the answer."""
    automation = automation_or_404(automation_id)
    form = TestEventForm(request.POST)
    result = debugging.test_event(automation, form.cleaned_data["event"]) if form.is_valid() else None
    ctx = {**detail_context(automation), **debug_context(automation, form, result)}
    return render(request, "automations/detail.html", ctx, status=200 if result is not None else 400)


@require_POST
@login_required
def automation_replay(request: HttpRequest, automation_id: str) -> HttpResponse:
    """The page's "Replay": the automation page again, with the timeline."""
    automation = automation_or_404(automation_id)
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
    automation = automation_or_404(automation_id)
    try:
        debugging.rerun_action(automation, run_id)
    except debugging.RerunRefused as e:
        messages.error(request, f"Not re-run: {e}.")
        return redirect("automation-detail", automation.id)
    messages.success(request, "The action runs again now; its outcome appears in the firing history.")
    return redirect("automation-detail", automation.id)
