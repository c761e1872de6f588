"""Actions: their JSON shapes (validated with paths) and how one action run is executed.

Runs are rows (models.ActionRun) so that any process can take a due one (SKIP LOCKED), a failure
is retried a bounded number of times with a backoff, and the outcome is visible on the
automation page. Each run is executed on its own worker thread with a timeout, so a slow
webhook never holds up another automation.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from eventfeed import audit, outbound, sandbox

from eventfeed.events.emit import InvalidEvent, emit
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE, json_type
from eventfeed.events.wire import iso, stored

from . import exchanges

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF = (2, 10)  # seconds before the 2nd and 3rd attempts
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0
LEASE = timedelta(seconds=MAX_TIMEOUT + 30)

SUPPORTED = {
    "do-nothing": set(),
    "call-webhook": {"url", "method", "headers", "payload", "timeout", "block_document_id"},
    "send-notification": {"subject", "body", "to", "block_document_id"},
    "emit-event": {"event", "resource", "related", "payload"},
    "pause-automation": {"source", "automation_id"},
    "resume-automation": {"source", "automation_id"},
}
# Prefect's other actions act on deployments, flow runs, work pools and queues Eventfeed does
# not have; they are refused by name rather than accepted and never run.
PREFECT_ONLY = {
    "run-deployment", "pause-deployment", "resume-deployment", "cancel-flow-run", "suspend-flow-run",
    "resume-flow-run", "change-flow-run-state", "delete-flow-run", "pause-work-queue", "resume-work-queue",
    "pause-work-pool", "resume-work-pool",
}
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
# Prefect's call-webhook and send-notification name a block document (a channel); Eventfeed's
# own forms of them (a URL; in-app and email) do not, and the SDK would refuse them under
# Prefect's type. The API shows them under these types, which the SDK reads as UnknownAction
# and sends back unchanged; both names are accepted on the way in.
OWN_FORMS = {"eventfeed-call-webhook": "call-webhook", "eventfeed-send-notification": "send-notification"}


def as_prefect(action: dict) -> dict:
    """An action as the API shows it: Prefect's shape where Prefect has the action."""
    kind = action.get("type")
    if kind in ("call-webhook", "send-notification") and not action.get("block_document_id"):
        return {**action, "type": f"eventfeed-{kind}"}
    return action



def _check_template(problems: list, value: Any, path: str) -> None:
    if not isinstance(value, str):
        problems.append((path, f"must be a string (a Jinja template), not {json_type(value)}"))
        return
    problems.extend((path, f"is not a valid template: {problem}") for problem in sandbox.check(value))


def default_action_type(action: dict) -> str | None:
    """The type of an action sent without one, from its fields. The SDK's update_automation()
    dumps with exclude_unset, which leaves out every action's `type` (a defaulted Literal).
    Only pause- and resume-automation cannot be told apart: they stay a 422."""
    keys = set(action) - {"type"}
    if not keys:
        return "do-nothing"
    if "block_document_id" in keys:
        return "send-notification" if keys & {"subject", "body"} else "call-webhook"
    for kind in ("call-webhook", "send-notification", "emit-event"):
        if keys <= SUPPORTED[kind] and keys & ({"url", "event", "body", "subject", "to"}):
            return kind
    return None


# Prefect's forms: a channel (block document) and the fields Prefect gives the action.
CHANNEL_FIELDS = {"call-webhook": {"block_document_id", "payload"}, "send-notification": {"block_document_id", "subject", "body"}}


def _check_channel(problems: list, clean: dict, p: str, kind: str) -> None:
    """Prefect's CallWebhook / SendNotification: the channel must exist and be able to do it."""
    from eventfeed.blocks.kinds import apprise_url
    from eventfeed.blocks.store import find_document

    for key in clean:
        if key != "type" and key not in CHANNEL_FIELDS[kind]:
            problems.append((f"{p}.{key}", f"is not a field of {kind} with a block_document_id (expected: "
                                           f"{', '.join(sorted(CHANNEL_FIELDS[kind]))})"))
    doc = find_document(clean.get("block_document_id"))
    if doc is None:
        problems.append((f"{p}.block_document_id", "must be the id of a channel (a block document); see /settings/channels/"))
        return
    clean["block_document_id"] = str(doc.id)
    slug = doc.block_type.slug
    if kind == "call-webhook" and slug != "webhook":
        problems.append((f"{p}.block_document_id", f"names a {slug} block; call-webhook needs a webhook block"))
    if kind == "send-notification" and slug not in ("webhook", "eventfeed-email") and apprise_url(slug, doc.data) is None:
        problems.append((f"{p}.block_document_id", f"names a {slug} block, which Eventfeed cannot send notifications to"))
    if kind == "call-webhook":
        _check_template(problems, clean.setdefault("payload", ""), f"{p}.payload")
    else:
        _check_template(problems, clean.setdefault("subject", "Prefect automated notification"), f"{p}.subject")
        _check_template(problems, clean.setdefault("body", ""), f"{p}.body")


def parse_actions(data: Any, path: str = "actions") -> list[dict]:
    from .triggers import TriggerError

    if data is None:
        return []
    if not isinstance(data, list):
        raise TriggerError([(path, f"must be a list of actions, not {json_type(data)}")])
    problems: list[tuple[str, str]] = []
    out = []
    for i, action in enumerate(data):
        p = f"{path}[{i}]"
        if not isinstance(action, dict):
            problems.append((p, "must be an object with a type"))
            continue
        kind = action.get("type") or default_action_type(action)
        kind = OWN_FORMS.get(kind, kind)
        if kind is None:
            problems.append((f"{p}.type", f"is required: one of {', '.join(sorted(SUPPORTED))}"))
            continue
        if kind in PREFECT_ONLY:
            problems.append((f"{p}.type", f"{kind} acts on Prefect objects Eventfeed does not have; supported: {', '.join(sorted(SUPPORTED))}"))
            continue
        if kind not in SUPPORTED:
            problems.append((f"{p}.type", f"must be one of: {', '.join(sorted(SUPPORTED))}"))
            continue
        for key in action:
            if key != "type" and key not in SUPPORTED[kind]:
                problems.append((f"{p}.{key}", f"is not a field of {kind} (expected: {', '.join(sorted(SUPPORTED[kind])) or 'none'})"))
        clean = dict(action, type=kind)
        if "block_document_id" in action and kind in ("call-webhook", "send-notification"):
            _check_channel(problems, clean, p, kind)
        elif kind == "call-webhook":
            url = action.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                problems.append((f"{p}.url", "is required: an http:// or https:// URL"))
            elif refused := outbound.refusal(url):
                problems.append((f"{p}.url", f"cannot be called: {refused}"))
            method = clean.setdefault("method", "POST")
            if method not in METHODS:
                problems.append((f"{p}.method", f"must be one of {', '.join(sorted(METHODS))}"))
            headers = clean.setdefault("headers", {})
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                problems.append((f"{p}.headers", "must be an object of header: string value"))
            _check_template(problems, clean.setdefault("payload", ""), f"{p}.payload")
            timeout = clean.setdefault("timeout", DEFAULT_TIMEOUT)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
                problems.append((f"{p}.timeout", f"must be a number of seconds from 0 to {MAX_TIMEOUT:g}"))
        elif kind == "send-notification":
            _check_template(problems, clean.setdefault("subject", "{{ automation.name }} fired"), f"{p}.subject")
            _check_template(problems, clean.setdefault("body", ""), f"{p}.body")
            to = clean.setdefault("to", [])
            if not isinstance(to, list) or not all(isinstance(x, str) and "@" in x for x in to):
                problems.append((f"{p}.to", "must be a list of email addresses"))
        elif kind == "emit-event":
            _check_template(problems, clean.get("event"), f"{p}.event")
            resource = clean.setdefault("resource", {})
            if not isinstance(resource, dict) or not all(isinstance(v, str) for v in resource.values()):
                problems.append((f"{p}.resource", "must be an object of string labels (templates allowed)"))
            related = clean.setdefault("related", [])
            if not isinstance(related, list) or not all(isinstance(r, dict) for r in related):
                problems.append((f"{p}.related", "must be a list of label objects"))
            if not isinstance(clean.setdefault("payload", {}), dict):
                problems.append((f"{p}.payload", "must be an object"))
        elif kind in ("pause-automation", "resume-automation"):
            source = clean.setdefault("source", "inferred")
            if source not in ("selected", "inferred"):
                problems.append((f"{p}.source", 'must be "selected" or "inferred" (this automation)'))
            target = clean.setdefault("automation_id", None)
            if source == "selected":
                try:
                    uuid.UUID(str(target))
                except ValueError:
                    problems.append((f"{p}.automation_id", "must be the UUID of an automation when source is selected"))
        out.append(clean)
    if problems:
        raise TriggerError(problems)
    return out


# -- running ------------------------------------------------------------------------------------

class Labels(dict):
    """A resource's labels for templates, as Prefect's Resource reads: `{{ event.resource.id }}`,
    `.name`, `.role`, and any label with `{{ event.resource["prefect.resource.name"] }}`."""

    @property
    def id(self) -> str:
        return self.get(RESOURCE_ID, "")

    @property
    def name(self) -> str:
        return self.get("prefect.resource.name", "")

    @property
    def role(self) -> str:
        return self.get(RESOURCE_ROLE, "")


def template_context(run) -> dict:
    """What an action template sees (README, "Action templates"): Prefect's names for the same
    things, so that a Prefect template renders unchanged."""
    firing, automation = run.firing, run.automation
    slim = firing.triggering_event
    # The stored event, with its payload; the state kept only its slim part.
    event = (stored(slim["id"]) or slim) if slim else None
    if event is not None:
        related = [Labels(r) for r in event.get("related") or []]
        event = dict(event, resource=Labels(event["resource"]), related=related,
                     resource_in_role={r.role: r for r in related})
    return {
        "automation": {"id": str(automation.id), "name": automation.name, "description": automation.description,
                       "url": f"/automations/{automation.id}/"},
        "event": event,
        "resource": event["resource"] if event else None,
        "related": event["related"] if event else [],
        "labels": firing.labels,
        "firing": {"id": str(firing.id), "kind": firing.kind, "at": iso(firing.at), "event_id": str(firing.event_id)},
    }


class ActionFailed(Exception):
    def __init__(self, message: str, status: int | None = None, *, final: bool = False):
        super().__init__(message)
        self.status = status
        # A failure that would recur on every attempt (a template that breaks a bound) is not retried.
        self.final = final


def render(source: str, ctx: dict, field: str = "template") -> str:
    try:
        return sandbox.render(source, ctx)
    except sandbox.SandboxError as e:
        raise ActionFailed(f"the {field} template failed: {e.reason}", final=True) from None


def webhook_failure(response: outbound.Response) -> str:
    """A failed call's reason: its status, and the start of its body only when the operator
    allowed the target (otherwise a webhook would read whatever a server answers)."""
    if response.allowed:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    return f"HTTP {response.status_code}"


def perform(run) -> int | None:
    """Do the action; return an HTTP status where there is one; raise ActionFailed."""
    action, kind = run.action, run.action["type"]
    if kind == "do-nothing":
        return None
    ctx = template_context(run)
    if kind in ("call-webhook", "send-notification") and action.get("block_document_id"):
        return _through_channel(run, ctx)
    if kind == "call-webhook":
        import httpx

        body = render(action.get("payload", ""), ctx, "payload")
        run.exchange = exchanges.request_view(action.get("method", "POST"), action["url"], action.get("headers") or {}, body)
        try:
            response = outbound.request(
                action.get("method", "POST"), action["url"], headers=action.get("headers") or {},
                content=body.encode(), timeout=float(action.get("timeout", DEFAULT_TIMEOUT)),
            )
            run.exchange["response"] = exchanges.response_view(response)
        except outbound.OutboundRefused as e:
            raise ActionFailed(f"refused: {e.reason}", final=True) from None
        except httpx.HTTPError as e:
            raise ActionFailed(f"{type(e).__name__}: {e}") from None
        if response.status_code >= 400:
            raise ActionFailed(webhook_failure(response), response.status_code)
        return response.status_code
    if kind == "send-notification":
        from .notify import notify

        subject = render(action.get("subject", ""), ctx, "subject").strip() or f"{run.automation.name} fired"
        body = render(action.get("body", ""), ctx, "body")
        notify(run.automation, run.firing, subject, body)
        if action.get("to"):
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, action["to"])
        return None
    if kind == "emit-event":
        name = render(action["event"], ctx, "event").strip()
        resource = ({k: render(v, ctx, f"resource.{k}") for k, v in (action.get("resource") or {}).items()}
                    or {RESOURCE_ID: run.automation.resource_id})
        related = [{k: render(v, ctx, f"related[{i}].{k}") for k, v in r.items()} for i, r in enumerate(action.get("related") or [])]
        try:
            emit(name, resource, related, action.get("payload") or {})
        except InvalidEvent as e:
            raise ActionFailed(f"the event to emit is not valid: {e}") from None
        return None
    if kind in ("pause-automation", "resume-automation"):
        from .models import Automation
        from .store import set_enabled

        target_id = run.automation_id if action.get("source", "inferred") == "inferred" else action["automation_id"]
        target = Automation.objects.filter(pk=target_id).first()
        if target is None:
            raise ActionFailed(f"automation {target_id} does not exist")
        # The automation whose action this is did it: the audit event names it as the actor.
        with audit.acting({RESOURCE_ID: run.automation.resource_id, "prefect.resource.name": run.automation.name}):
            set_enabled(target, kind == "resume-automation")
        return None
    raise ActionFailed(f"unknown action type {kind}")


def _through_channel(run, ctx: dict) -> int | None:
    """Prefect's CallWebhook / SendNotification: through the named channel (block document)."""
    from eventfeed.blocks import delivery
    from eventfeed.blocks.store import find_document

    action = run.action
    doc = find_document(action["block_document_id"])
    if doc is None:
        raise ActionFailed(f"the channel {action['block_document_id']} was deleted", final=True)
    try:
        if action["type"] == "call-webhook":
            return delivery.call_webhook(doc, render(action.get("payload", ""), ctx, "payload"))
        subject = render(action.get("subject", ""), ctx, "subject").strip() or f"{run.automation.name} fired"
        return delivery.notify(doc, subject, render(action.get("body", ""), ctx, "body"))
    except delivery.DeliveryFailed as e:
        raise ActionFailed(f"{doc.name}: {e}", e.status) from None


def action_event(run, what: str, extra: dict | None = None) -> None:
    firing = run.firing
    related = [{RESOURCE_ID: f"prefect.event.{firing.event_id}", RESOURCE_ROLE: "automation-triggered-event"}]
    if firing.triggering_event_id:
        related.append({RESOURCE_ID: f"prefect.event.{firing.triggering_event_id}", RESOURCE_ROLE: "triggering-event"})
    emit(f"prefect.automation.action.{what}", {RESOURCE_ID: run.automation.resource_id, "prefect.resource.name": run.automation.name},
         related, {"action_index": run.index, "action_type": run.action["type"], "invocation": str(run.id), **(extra or {})})


def claim_due(limit: int = 20) -> list:
    """Take up to `limit` due runs: mark them running under a lease, one attempt more."""
    from .models import ActionRun

    now = timezone.now()
    due = ActionRun.objects.filter(status__in=[ActionRun.PENDING, ActionRun.RUNNING], next_attempt__lte=now)
    # A read first: the runner polls every second, and on SQLite a transaction takes the write
    # lock (IMMEDIATE).
    if not due.exists():
        return []
    with transaction.atomic():
        runs = list(
            ActionRun.objects.select_for_update(skip_locked=True)
            .filter(status__in=[ActionRun.PENDING, ActionRun.RUNNING], next_attempt__lte=now)
            .order_by("next_attempt")[:limit]
        )
        for run in runs:
            run.status = ActionRun.RUNNING
            run.attempts += 1
            run.next_attempt = now + LEASE
            run.save(update_fields=["status", "attempts", "next_attempt"])
    return list(ActionRun.objects.filter(pk__in=[r.pk for r in runs]).select_related("firing", "automation"))


def execute(run) -> None:
    """One attempt of one run, and its outcome recorded (never raises for the action's fault)."""
    from .models import ActionRun

    if run.attempts == 1:
        action_event(run, "triggered")
    run.exchange = {}
    started = time.monotonic()
    try:
        status = perform(run)
    except Exception as e:  # noqa: BLE001 - any failure of the action is recorded, not raised
        status = getattr(e, "status", None)
        error = str(e) if isinstance(e, ActionFailed) else f"{type(e).__name__}: {e}"
        exchanges.record(run, run.exchange, started, time.monotonic(), run.attempts, error)
        log.warning("automation %s action %d failed (attempt %d): %s", run.automation_id, run.index, run.attempts, error)
        final = run.attempts >= MAX_ATTEMPTS or getattr(e, "final", False)
        run.status = ActionRun.FAILED if final else ActionRun.PENDING
        run.last_error = error[:2000]
        run.response_status = status
        run.next_attempt = timezone.now() + timedelta(seconds=BACKOFF[min(run.attempts, len(BACKOFF)) - 1])
        if final:
            run.finished = timezone.now()
        run.save(update_fields=["status", "last_error", "response_status", "next_attempt", "finished", "exchanges"])
        if final:
            action_event(run, "failed", {"reason": run.last_error, "status_code": status})
        return
    exchanges.record(run, run.exchange, started, time.monotonic(), run.attempts, None)
    run.status = ActionRun.SUCCEEDED
    run.response_status = status
    run.finished = timezone.now()
    run.save(update_fields=["status", "response_status", "finished", "exchanges"])
    action_event(run, "executed", {"status_code": status} if status is not None else {})


def run_due_actions() -> int:
    """Claim and execute due runs one after another (tests, and a worker without asyncio)."""
    runs = claim_due()
    for run in runs:
        execute(run)
    return len(runs)
