"""Prefect Cloud's `/api/webhooks/` shapes, with API-key auth, and the receiving door `/hooks/{slug}`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from eventfeed.events import dbfaults
from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required
from eventfeed.events.middleware import database_unavailable
from eventfeed.events.problems import BODY_RULE

from . import store, templates, verification
from .models import Webhook

WRITABLE = {"name", "description", "enabled", "template", "verification"}
READ_ONLY = {"id", "slug", "created", "updated"}
MAX_NAME = 200
MAX_DESCRIPTION = 10_000


def parse_fields(data: Any, *, partial: bool, current: Webhook | None = None) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The fields of a webhook from API JSON, or the problems, each naming its field and rule."""
    if not isinstance(data, dict):
        return {}, [{"path": "", "rule": BODY_RULE}]
    problems: list[dict[str, str]] = []

    def fail(path: str, rule: str) -> None:
        problems.append({"path": path, "rule": rule})

    for key in sorted(set(data) - WRITABLE - READ_ONLY):
        fail(key, f"is not a field of a webhook (expected {', '.join(sorted(WRITABLE))})")
    for key in sorted(set(data) & READ_ONLY):
        own = store.webhook_json(current).get(key) if current is not None else None
        if data[key] != own:
            fail(key, "is set by the server" + (": rotate the URL with POST /api/webhooks/{id}/rotate" if key == "slug" else ""))
    fields: dict[str, Any] = {}
    if not partial:
        for key in ("name", "template"):
            if key not in data:
                fail(key, "is required")
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not name.strip():
            fail("name", "must be a non-empty string")
        elif len(name) > MAX_NAME:
            fail("name", f"must be at most {MAX_NAME} characters")
        else:
            fields["name"] = name.strip()
    if "description" in data:
        description = data["description"]
        if description is None:
            description = ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            fail("description", f"must be a string of at most {MAX_DESCRIPTION:,} characters")
        else:
            fields["description"] = description
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            fail("enabled", "must be true or false")
        else:
            fields["enabled"] = data["enabled"]
    if "template" in data:
        problem = templates.template_problem(data["template"])
        if problem:
            fail("template", problem)
        else:
            fields["template"] = data["template"]
    if "verification" in data or current is None:
        found, errs = verification.parse(data.get("verification"), verification.from_stored(current.verification) if current else None)
        for path, rule in errs:
            fail(path, rule)
        if found is not None:
            fields["verification"] = found
    if any("\x00" in v for v in fields.values() if isinstance(v, str)):
        fail(next(k for k, v in fields.items() if isinstance(v, str) and "\x00" in v), "must not contain the NUL character")
    return fields, problems


def invalid(problems: list[dict[str, str]]) -> JsonResponse:
    return api_error(422, "The webhook is not valid.", errors=problems)


@require_http_methods(["GET", "POST"])
@api_key_required
def collection(request: HttpRequest) -> JsonResponse:
    mine = store.visible_to(api_key=request.api_key)
    if request.method == "GET":
        return JsonResponse([store.webhook_json(w) for w in mine.order_by("name", "id")], safe=False)
    data, error = read_json(request)
    if error:
        return error
    fields, problems = parse_fields(data, partial=False)
    if problems:
        return invalid(problems)
    with transaction.atomic():
        webhook = store.save(Webhook(owner=request.api_key.created_by), fields)
        store.audit_change("created", webhook)
    return JsonResponse(store.webhook_json(webhook), status=201)


@require_POST
@api_key_required
def filter_webhooks(request: HttpRequest) -> JsonResponse:
    """What `prefect cloud webhook ls` asks for: every webhook this key may see."""
    mine = store.visible_to(api_key=request.api_key)
    return JsonResponse([store.webhook_json(w) for w in mine.order_by("name", "id")], safe=False)


@require_http_methods(["GET", "PUT", "PATCH", "DELETE"])
@api_key_required
def item(request: HttpRequest, webhook_id: str) -> HttpResponse:
    webhook = store.find(store.visible_to(api_key=request.api_key), webhook_id)
    if webhook is None:
        return api_error(404, "Webhook not found.")
    if request.method == "GET":
        return JsonResponse(store.webhook_json(webhook))
    if request.method == "DELETE":
        with transaction.atomic():
            store.audit_change("deleted", webhook)
            webhook.delete()
        return HttpResponse(status=204)
    data, error = read_json(request)
    if error:
        return error
    fields, problems = parse_fields(data, partial=request.method == "PATCH", current=webhook)
    if problems:
        return invalid(problems)
    before = store.before_change(webhook)
    with transaction.atomic():
        store.save(webhook, fields)
        store.audit_change("updated", webhook, before)
    return HttpResponse(status=204)


@require_POST
@api_key_required
def rotate(request: HttpRequest, webhook_id: str) -> JsonResponse:
    webhook = store.find(store.visible_to(api_key=request.api_key), webhook_id)
    if webhook is None:
        return api_error(404, "Webhook not found.")
    with transaction.atomic():
        store.rotate(webhook)
        store.audit_change("rotated", webhook)
    return JsonResponse(store.webhook_json(webhook))


@csrf_exempt
def receive(request: HttpRequest, slug: str) -> HttpResponse:
    """`/hooks/{slug}`: any method, no API key (the slug, and the verification if set, are the
    secret). 204 once the event is stored; a 4xx JSON that says why otherwise."""
    webhook = Webhook.objects.filter(slug=slug).first() if len(slug) <= 64 else None
    length = int(request.META.get("CONTENT_LENGTH") or 0) if (request.META.get("CONTENT_LENGTH") or "0").isdigit() else 0
    # A body over the limit is not read: its length is enough to refuse it.
    body = b"" if length > settings.EVENTFEED_MAX_EVENT_BYTES else request.body
    try:
        outcome = store.receive(webhook, request.method or "GET", request.headers, body, request.content_type or "", length)
    except DatabaseError as e:
        if not dbfaults.is_unavailable(e):
            raise
        # As on /api/: the sender is asked to retry later, and GitHub, Stripe and the Standard
        # Webhooks senders do retry a 5xx.
        return database_unavailable()
    if outcome.status == 204:
        return HttpResponse(status=204)
    return JsonResponse(outcome.as_json(), status=outcome.status)
