from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from eventfeed.events.problems import BODY_RULE
from eventfeed.events.queries import resource_names
from eventfeed.events.wire import stored

from . import store
from .describe import default_trigger, describe, resource_ids, widenings
from .detail import automation_or_404, detail_context, sentence
from .forms import AutomationForm
from .models import Automation, Notification
from .preview import RANGES, preview
from .triggers import TriggerError, parse_trigger

ACTION_EXAMPLES = {
    "send-notification": {"type": "send-notification", "subject": "{{ automation.name }}: {{ event.event }}",
                          "body": "{{ event.resource.name or event.resource.id }}", "to": []},
    "call-webhook": {"type": "call-webhook", "url": "https://example.com/hook", "method": "POST",
                     "headers": {"Content-Type": "application/json"},
                     "payload": '{"automation": {{ automation.name|json }}, "event": {{ event|json }}}', "timeout": 10},
    "emit-event": {"type": "emit-event", "event": "acme.alert.raised", "resource": {"prefect.resource.id": "acme.alert.{{ event.resource.id }}"}},
    "pause-automation": {"type": "pause-automation", "source": "inferred"},
    "resume-automation": {"type": "resume-automation", "source": "selected", "automation_id": None},
    "do-nothing": {"type": "do-nothing"},
}


def channel_choices() -> list[dict]:
    """The channels (Settings › Channels) an action form can pick: webhooks for call-webhook,
    any for send-notification."""
    from eventfeed.blocks.models import BlockDocument

    return [{"id": str(doc.id), "name": doc.name, "kind": doc.block_type.slug}
            for doc in BlockDocument.objects.filter(is_anonymous=False).select_related("block_type").order_by("name")]


def channel_examples() -> dict:
    """An "Add" button per notification channel (Settings › Channels): Prefect's own action shapes."""
    from eventfeed.blocks.models import BlockDocument

    out = {}
    for doc in BlockDocument.objects.filter(is_anonymous=False).select_related("block_type").order_by("name"):
        if doc.block_type.slug == "webhook":
            out[f"call {doc.name}"] = {"type": "call-webhook", "block_document_id": str(doc.id),
                                       "payload": '{"automation": {{ automation.name|json }}, "event": {{ event|json }}}'}
        out[f"notify {doc.name}"] = {"type": "send-notification", "block_document_id": str(doc.id),
                                     "subject": "{{ automation.name }}: {{ event.event }}",
                                     "body": "{{ event.resource.name or event.resource.id }}"}
    return out


@require_GET
@login_required
def automation_list(request: HttpRequest) -> HttpResponse:
    automations = [(a, sentence(a.trigger)) for a in Automation.objects.order_by("name")]
    return render(request, "automations/list.html", {"automations": automations})


@require_GET
@login_required
def automation_detail(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = automation_or_404(automation_id)
    return render(request, "automations/detail.html", detail_context(automation))


def _editor(request: HttpRequest, form: AutomationForm, automation: Automation | None, event: dict | None) -> HttpResponse:
    groups = widenings(event) if event else None
    for group, options in (groups or {}).items():
        if group == "default":
            continue
        for option in options:
            option["set_json"] = json.dumps(option["set"])
    ctx = {
        "form": form,
        "automation": automation,
        "event": event,
        "widenings": groups,
        "ranges": list(RANGES),
        "action_examples": {**ACTION_EXAMPLES, **channel_examples()},
        # What the actions form draws its choices from, and each problem of a refused save by its JSON path.
        "editor_data": {
            "problems": form.problems,
            "channels": channel_choices(),
            "automations": [{"id": str(a.id), "name": a.name} for a in Automation.objects.order_by("name").only("id", "name")],
        },
    }
    return render(request, "automations/edit.html", ctx, status=400 if form.is_bound and form.errors else 200)


@login_required
def automation_new(request: HttpRequest) -> HttpResponse:
    event = stored(request.GET["event"]) if request.GET.get("event") else None
    if request.GET.get("event") and event is None:
        messages.error(request, "That event does not exist (any more): starting from an empty trigger.")
    if request.method == "POST":
        form = AutomationForm(request.POST)
        if form.is_valid():
            automation = store.save_automation(form.fields_for_store())
            messages.success(request, f"Saved “{automation.name}”.")
            return redirect("automation-detail", automation.id)
        return _editor(request, form, None, event)
    trigger = default_trigger(event) if event else {"type": "event", "match": {}, "match_related": {}, "after": [],
                                                     "expect": [], "for_each": [], "posture": "Reactive",
                                                     "threshold": 1, "within": 0}
    name = f"{event['event']} on {event['resource'].get('prefect.resource.name') or event['resource']['prefect.resource.id']}" if event else ""
    form = AutomationForm(initial={"name": name[:200], "enabled": True, "trigger": json.dumps(trigger, indent=2),
                                   "actions": json.dumps([ACTION_EXAMPLES["send-notification"]], indent=2)})
    return _editor(request, form, None, event)


@login_required
def automation_edit(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = automation_or_404(automation_id)
    if request.method == "POST":
        form = AutomationForm(request.POST, automation=automation)
        if form.is_valid():
            store.save_automation(form.fields_for_store(), automation)
            messages.success(request, f"Saved “{automation.name}”.")
            return redirect("automation-detail", automation.id)
        return _editor(request, form, automation, None)
    return _editor(request, AutomationForm(initial=AutomationForm.initial_for(automation)), automation, None)


@require_POST
@login_required
def automation_delete(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = automation_or_404(automation_id)
    store.delete_automation(automation)
    messages.success(request, f"Deleted “{automation.name}”.")
    return redirect("automation-list")


@require_POST
@login_required
def automation_enabled(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = automation_or_404(automation_id)
    store.set_enabled(automation, request.POST.get("enabled") == "on")
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"enabled": automation.enabled})
    return redirect(request.POST.get("next") or "automation-list")


@require_POST
@login_required
def automation_preview(request: HttpRequest) -> JsonResponse:
    """The editor's live check: {trigger, range} → errors, or the sentence and the preview."""
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError as e:
        return JsonResponse({"errors": [{"path": "", "rule": f"not valid JSON: {e.msg}"}]}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"errors": [{"path": "", "rule": BODY_RULE}]}, status=400)
    range_key = body.get("range") if body.get("range") in RANGES else "24h"
    try:
        trigger, _ = parse_trigger(body.get("trigger"), "trigger")
    except TriggerError as e:
        return JsonResponse({"errors": e.as_list()}, status=422)
    known = resource_names(resource_ids(trigger))
    return JsonResponse({"errors": [], "sentence": describe(trigger, known), "preview": preview(trigger, range_key, timezone.now())})


@require_GET
@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    notes = Notification.objects.select_related("automation", "firing")[:200]
    return render(request, "automations/notifications.html", {"notifications": notes})
