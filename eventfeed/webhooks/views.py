from __future__ import annotations

import json
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from eventfeed.events.problems import BODY_RULE
from eventfeed.events.wire import wire

from . import store, templates, verification
from .forms import WebhookForm
from .models import Webhook, WebhookRequest
from .presets import PRESETS, SAMPLES


def _webhook(request: HttpRequest, webhook_id: str) -> Webhook:
    # Another user's webhook is as absent as one that does not exist: its URL is a secret.
    webhook = store.find(store.visible_to(request.user), webhook_id)
    if webhook is None:
        raise Http404("No webhook has this id.")
    return webhook


def hook_url(request: HttpRequest, webhook: Webhook) -> str:
    return request.build_absolute_uri(reverse("hook", args=[webhook.slug]))


@require_GET
@login_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    webhooks = store.visible_to(request.user).order_by("name", "id")
    return render(request, "webhooks/list.html", {"webhooks": [(w, hook_url(request, w)) for w in webhooks], "presets": PRESETS})


@require_GET
@login_required
def webhook_detail(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, webhook_id)
    ctx = {
        "webhook": webhook,
        "url": hook_url(request, webhook),
        "verification": verification.from_stored(webhook.verification).as_json(),
        "requests": store.recent_requests(webhook),
        "keep": store.KEEP_REQUESTS,
    }
    return render(request, "webhooks/detail.html", ctx)


def _editor(request: HttpRequest, form: WebhookForm, webhook: Webhook | None, preset: str | None = None) -> HttpResponse:
    ctx = {
        "form": form,
        "webhook": webhook,
        "presets": PRESETS,
        "preset": preset,
        "editor_data": {
            "preview": reverse("webhook-preview"),
            "webhook": str(webhook.id) if webhook else None,
            "presets": {k: {kk: vv for kk, vv in p.items()} for k, p in PRESETS.items()},
            "samples": SAMPLES,
            "secretHeader": verification.DEFAULT_SECRET_HEADER,
        },
        "requests": store.recent_requests(webhook) if webhook else [],
    }
    return render(request, "webhooks/edit.html", ctx, status=400 if form.is_bound and form.errors else 200)


@login_required
def webhook_new(request: HttpRequest) -> HttpResponse:
    preset = request.GET.get("preset") if request.GET.get("preset") in PRESETS else "generic"
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            with transaction.atomic():
                webhook = store.save(Webhook(owner=request.user), form.fields_for_store())
                store.audit_change("created", webhook)
            messages.success(request, f"Created “{webhook.name}”. Point the sender at its URL.")
            return redirect("webhook-detail", webhook.id)
        return _editor(request, form, None, preset)
    initial = WebhookForm.initial_for(preset=preset)
    if PRESETS[preset]["generate_secret"]:
        # Shown in the form so it can be given to the sender; once saved it is never shown again.
        initial["secret"] = secrets.token_urlsafe(24)
    return _editor(request, WebhookForm(initial=initial), None, preset)


@login_required
def webhook_edit(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, webhook_id)
    current = verification.from_stored(webhook.verification)
    if request.method == "POST":
        form = WebhookForm(request.POST, current=current)
        if form.is_valid():
            before = store.before_change(webhook)
            with transaction.atomic():
                store.save(webhook, form.fields_for_store())
                store.audit_change("updated", webhook, before)
            messages.success(request, f"Saved “{webhook.name}”.")
            return redirect("webhook-detail", webhook.id)
        return _editor(request, form, webhook)
    return _editor(request, WebhookForm(initial=WebhookForm.initial_for(webhook), current=current), webhook)


@require_POST
@login_required
def webhook_rotate(request: HttpRequest, webhook_id: str) -> HttpResponse:
    with transaction.atomic():
        webhook = store.rotate(_webhook(request, webhook_id))
        store.audit_change("rotated", webhook)
    messages.success(request, "The URL was rotated: the old one no longer answers. Give the sender the new one.")
    return redirect("webhook-detail", webhook.id)


@require_POST
@login_required
def webhook_enabled(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, webhook_id)
    before = store.before_change(webhook)
    with transaction.atomic():
        store.save(webhook, {"enabled": request.POST.get("enabled") == "on"})
        store.audit_change("updated", webhook, before)
    if request.headers.get("Accept") == "application/json":
        return JsonResponse({"enabled": webhook.enabled})
    messages.success(request, f"“{webhook.name}” is {'enabled' if webhook.enabled else 'disabled'}.")
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith("/webhooks/") else "webhook-list")


@require_POST
@login_required
def webhook_delete(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, webhook_id)
    with transaction.atomic():
        store.audit_change("deleted", webhook)
        webhook.delete()
    messages.success(request, f"Deleted “{webhook.name}”; its URL no longer answers.")
    return redirect("webhook-list")


def _bad(rule: str, path: str = "") -> JsonResponse:
    return JsonResponse({"error": rule, "errors": [{"path": path, "rule": rule}]}, status=400)


@require_POST
@login_required
def webhook_preview(request: HttpRequest) -> JsonResponse:
    """The editor's live preview: {template, request: <id of a kept request> | sample: <preset
    name>, webhook?: <id>} → the event the template makes of it, or why it makes none."""
    try:
        data = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _bad("the body is not valid JSON")
    if not isinstance(data, dict):
        return _bad(BODY_RULE)
    source = data.get("template")
    problem = templates.template_problem(source)
    if problem:
        return JsonResponse({"error": f"The template {problem}.", "rendered": "", "event": None})
    webhook = store.find(store.visible_to(request.user), data["webhook"]) if data.get("webhook") else None
    if data.get("webhook") and webhook is None:
        return _bad("no webhook of yours has this id", "webhook")
    if data.get("request") is not None:
        kept = WebhookRequest.objects.filter(pk=data["request"], webhook__in=store.visible_to(request.user)).first() \
            if isinstance(data["request"], int) and not isinstance(data["request"], bool) else None
        if kept is None:
            return _bad("no kept request of yours has this id", "request")
        method, headers, raw = kept.method, kept.headers, kept.body.encode()
        webhook = webhook or kept.webhook
    elif data.get("sample") in SAMPLES:
        sample = SAMPLES[data["sample"]]
        method, headers, raw = sample["method"], sample["headers"], sample["body"].encode()
    else:
        return _bad(f"request must be the id of a kept request, or sample one of {', '.join(SAMPLES)}", "request")
    webhook = webhook or Webhook(name=str(data.get("name") or "New webhook")[:200])
    shown = templates.visible_headers(headers)
    parsed = templates.parse_body(raw, shown.get("Content-Type", ""))
    rendered = ""
    try:
        rendered = templates.render(source, templates.context(method, shown, parsed))
        event = templates.build_event(rendered, webhook=webhook, method=method, headers=shown, body=parsed)
    except templates.TemplateProblem as e:
        return JsonResponse({"error": str(e), "errors": e.errors, "rendered": e.rendered or rendered, "event": None})
    event.received = timezone.now()
    return JsonResponse({"error": None, "rendered": rendered, "event": wire(event)})
