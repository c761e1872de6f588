"""Queries and writes for webhooks: who sees which, saving, rotating, and receiving a request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from eventfeed import audit
from eventfeed.events.emit import InvalidEvent, emit
from eventfeed.events.ingest import ingest
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_NAME
from eventfeed.events.wire import iso

from . import templates, verification
from .models import Webhook, WebhookRequest, new_slug

# How many requests each webhook keeps (the newest); pruning runs every PRUNE_EVERY requests,
# so a webhook holds at most KEEP_REQUESTS + PRUNE_EVERY rows.
KEEP_REQUESTS = 50
PRUNE_EVERY = 10
# What the request log keeps of a body and of a rendered template, in characters.
KEEP_BODY = 64_000
FAILED_EVENT = "eventfeed.webhook.failed"


def visible_to(user=None, *, api_key=None) -> QuerySet[Webhook]:
    """The webhooks a signed-in user (their own; staff: all) or an API key (its user's; a key
    made on the command line: those made with such keys) may see and change."""
    qs = Webhook.objects.all()
    if api_key is not None:
        owner = api_key.created_by
        return qs if owner is not None and owner.is_staff else qs.filter(owner=owner) if owner else qs.filter(owner__isnull=True)
    if user is None or not user.is_authenticated:
        return qs.none()
    return qs if user.is_staff else qs.filter(owner=user)


def find(qs: QuerySet[Webhook], webhook_id: str) -> Webhook | None:
    try:
        return qs.filter(pk=uuid.UUID(str(webhook_id))).first()
    except ValueError:
        return None


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    """Prefect Cloud's webhook shape, with the verification (its secret never shown)."""
    return {
        "id": str(webhook.id),
        "name": webhook.name,
        "description": webhook.description,
        "enabled": webhook.enabled,
        "template": webhook.template,
        "slug": webhook.slug,
        "verification": verification.from_stored(webhook.verification).as_json(),
        "created": iso(webhook.created),
        "updated": iso(webhook.updated),
    }


def shown(webhook: Webhook) -> dict[str, Any]:
    """What an audit event may say about a webhook: webhook_json (no secret) without the slug,
    which is the URL and so the key to send events."""
    return {k: v for k, v in webhook_json(webhook).items() if k not in ("slug", "created", "updated")}


@dataclass(frozen=True)
class Before:
    """A webhook as it was, for auditing a change: what an audit event may show, and its secret,
    kept only to tell whether it changed (never recorded, never in a repr)."""

    shown: dict[str, Any]
    secret: str = field(repr=False)


def before_change(webhook: Webhook) -> Before:
    return Before(shown(webhook), verification.from_stored(webhook.verification).secret)


def audit_change(what: str, webhook: Webhook, before: Before | None = None) -> None:
    """eventfeed.audit.webhook.<what> by whoever makes the request (the pages and the API call it);
    an update takes `before_change(webhook)` from before the save."""
    if what == "updated":
        changed = audit.changes(before.shown if before else {}, shown(webhook))
        secret = verification.from_stored(webhook.verification).secret
        if before is not None and secret != before.secret:
            # A new secret is a change to see (who rotated it, when), named but never shown:
            # what the API shows of a verification, `secret_set`, stays true across a rotation.
            changed["verification.secret"] = {"from": audit.REDACTED if before.secret else None,
                                              "to": audit.REDACTED if secret else None}
        toggled = changed.pop("enabled", None)
        if changed:
            audit_change_event("updated", webhook, {"changed": changed})
        if toggled:
            audit_change_event("enabled" if webhook.enabled else "disabled", webhook, {})
        return
    audit_change_event(what, webhook, {"webhook": shown(webhook)} if what == "created" else {"name": webhook.name})


def audit_change_event(what: str, webhook: Webhook, payload: dict) -> None:
    audit.record(f"webhook.{what}", {RESOURCE_ID: webhook.resource_id, RESOURCE_NAME: webhook.name}, payload)


def save(webhook: Webhook, fields: Mapping[str, Any]) -> Webhook:
    for name, value in fields.items():
        if name == "verification":
            value = value.as_stored()
        setattr(webhook, name, value)
    webhook.save()
    return webhook


def rotate(webhook: Webhook) -> Webhook:
    """A new URL; the old one stops answering at once. Template and verification stay."""
    webhook.slug = new_slug()
    webhook.save(update_fields=["slug", "updated"])
    return webhook


@dataclass
class Outcome:
    status: int
    detail: str = ""
    errors: list[dict] = field(default_factory=list)
    event_id: uuid.UUID | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


def receive(webhook: Webhook | None, method: str, headers: Mapping[str, str], body: bytes, content_type: str,
            length: int = 0) -> Outcome:
    """Everything /hooks/{slug} does after finding the slug: check, render, store, record."""
    if webhook is None:
        return Outcome(404, "No webhook answers at this URL: check it, or ask for the new one if it was rotated.")
    checks = verification.from_stored(webhook.verification)
    shown = templates.visible_headers(headers, checks.secret_header)
    received = timezone.now()
    limit = settings.EVENTFEED_MAX_EVENT_BYTES
    if not webhook.enabled:
        outcome = Outcome(403, "This webhook is disabled.")
        record(webhook, received, method, shown, body, outcome, "refused")
        return outcome
    if max(length, len(body)) > limit:
        outcome = Outcome(413, f"The body is {max(length, len(body)):,} bytes; a webhook takes at most {limit:,} bytes.")
        record(webhook, received, method, shown, body, outcome, "refused")
        return outcome
    problem = verification.check(checks, headers, body)
    if problem:
        # Not an event: whoever knows the URL could otherwise write failure events into the feed.
        outcome = Outcome(401, f"Signature check ({webhook.kind}) failed: {problem} Nothing was stored.")
        record(webhook, received, method, shown, body, outcome, "refused")
        return outcome
    parsed = templates.parse_body(body, content_type)
    rendered = ""
    try:
        rendered = templates.render(webhook.template, templates.context(method, shown, parsed))
        event = templates.build_event(rendered, webhook=webhook, method=method, headers=shown, body=parsed, now=received)
    except templates.TemplateProblem as e:
        outcome = Outcome(400, f"The webhook's template could not make an event: {e}", e.errors)
        with transaction.atomic():
            record(webhook, received, method, shown, body, outcome, "failed", rendered=e.rendered or rendered)
            emit_failure(webhook, method, shown, parsed, e.rendered or rendered, str(e))
        return outcome
    outcome = Outcome(204, event_id=event.id)
    ingest([event])
    # After the event's own commit, not in its transaction: the log is for reading, and two
    # savepoints fewer per request is a tenth of the webhook's cost.
    record(webhook, received, method, shown, body, outcome, "stored", rendered=rendered)
    return outcome


def _cut(text: str) -> tuple[str, bool]:
    return (text[:KEEP_BODY], True) if len(text) > KEEP_BODY else (text, False)


def record(webhook: Webhook, received, method: str, headers: Mapping[str, str], body: bytes, outcome: Outcome,
           kind: str, *, rendered: str = "") -> WebhookRequest:
    text, truncated = _cut(body[: KEEP_BODY * 4].decode("utf-8", "replace").replace("\x00", "\ufffd"))
    request = WebhookRequest.objects.create(
        webhook=webhook,
        received=received,
        method=method[:16],
        headers={k: v.replace("\x00", "\ufffd") for k, v in headers.items()},
        body=text,
        body_truncated=truncated or len(body) > KEEP_BODY * 4,
        status=outcome.status,
        outcome=kind,
        event_id=outcome.event_id,
        rendered=_cut(rendered.replace("\x00", "\ufffd"))[0],
        error=outcome.detail if outcome.status >= 400 else "",
    )
    if request.pk % PRUNE_EVERY == 0:
        prune(webhook)
    return request


def prune(webhook: Webhook) -> int:
    keep = list(WebhookRequest.objects.filter(webhook=webhook).order_by("-received", "-id").values_list("id", flat=True)[:KEEP_REQUESTS])
    if len(keep) < KEEP_REQUESTS:
        return 0
    return WebhookRequest.objects.filter(webhook=webhook).exclude(id__in=keep).delete()[0]


def recent_requests(webhook: Webhook) -> list[WebhookRequest]:
    return list(WebhookRequest.objects.filter(webhook=webhook).order_by("-received", "-id")[:KEEP_REQUESTS])


def emit_failure(webhook: Webhook, method: str, headers: Mapping[str, str], body: Any, rendered: str, error: str) -> None:
    """`eventfeed.webhook.failed`, like Prefect Cloud's `prefect-cloud.webhook.failed`: what
    arrived, what the template rendered and why it was not an event."""
    resource = {RESOURCE_ID: webhook.resource_id, RESOURCE_NAME: webhook.name}
    payload = {
        "method": method.upper(),
        "headers": dict(headers),
        "body": body if not isinstance(body, str) else _cut(body)[0],
        "rendered": _cut(rendered)[0],
        "error": error,
    }
    try:
        emit(FAILED_EVENT, resource, payload=payload)
    except InvalidEvent as e:
        # The body itself broke a rule (a NUL, a size): say what happened without it.
        emit(FAILED_EVENT, resource, payload={"method": method.upper(), "error": error,
                                              "body_refused": [p.as_dict() for p in e.problems[:5]]})
