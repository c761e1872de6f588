"""Actions: how one action run is executed (their JSON shapes are action_specs.py).

Runs are rows (models.ActionRun) so that any process can take a due one (SKIP LOCKED), a failure
is retried a bounded number of times with a backoff, and the outcome is visible on the
automation page. Each run is executed on its own worker thread with a timeout, so a slow
webhook never holds up another automation.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from eventfeed import audit, outbound, sandbox
from eventfeed.events import dbfaults
from eventfeed.events.emit import InvalidEvent, emit
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE
from eventfeed.events.wire import iso, stored

from . import exchanges
from .action_specs import DEFAULT_TIMEOUT
from .models import ActionRun, Automation
from .store import set_enabled

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
BACKOFF = (2, 10)  # seconds before the 2nd and 3rd attempts
# A claimed run that calls out is taken again this long after its timeout (lease()): time for
# its process to record the outcome through a database outage of up to about a minute.
LEASE_MARGIN = 60.0
# A run done in the database: long enough for the claimer to start it.
IN_DATABASE_LEASE = timedelta(seconds=10)


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
                       "url": reverse("automation-detail", args=[automation.id])},
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


def in_database(action: dict) -> bool:
    """Whether the action's whole effect is a database write (an event, an in-app notification,
    an automation paused or resumed, nothing): such a run is done in the transaction that records
    its outcome, so it happens exactly once whatever is killed when. The others reach outside
    (HTTP, email, a channel) and are run at least once (README, "Failure modes")."""
    kind = action.get("type")
    if kind in ("do-nothing", "emit-event", "pause-automation", "resume-automation"):
        return True
    return kind == "send-notification" and not action.get("to") and not action.get("block_document_id")


def lease(action: dict) -> timedelta:
    """How long a claimed run is left to the process that claimed it; after that it is taken
    again. A run done in the database is short (a killed process's transaction rolled back); one
    that calls out lasts its timeout and a margin to record the outcome."""
    if in_database(action):
        return IN_DATABASE_LEASE
    return timedelta(seconds=float(action.get("timeout", DEFAULT_TIMEOUT)) + LEASE_MARGIN)


def claim_due(limit: int = 20) -> list:
    """Take up to `limit` due runs: mark them running under a lease, one attempt more. A first
    attempt's prefect.automation.action.triggered event is stored with the claim (once)."""
    now = timezone.now()
    due = ActionRun.objects.filter(status__in=[ActionRun.PENDING, ActionRun.RUNNING], next_attempt__lte=now)
    # A read first: the runner polls every second, and on SQLite a transaction takes the write
    # lock (IMMEDIATE).
    if not due.exists():
        return []
    with transaction.atomic():
        runs = list(
            ActionRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=[ActionRun.PENDING, ActionRun.RUNNING], next_attempt__lte=now)
            .select_related("firing", "automation")
            .order_by("next_attempt")[:limit]
        )
        for run in runs:
            run.status = ActionRun.RUNNING
            run.attempts += 1
            run.next_attempt = now + lease(run.action)
            run.save(update_fields=["status", "attempts", "next_attempt"])
            if run.attempts == 1:
                action_event(run, "triggered")
    return runs


def execute(run) -> None:
    """One attempt of one claimed run, and its outcome recorded (never raises for the action's
    fault). A database outage is not the action's fault: it raises, and the run is taken again
    when its lease ends."""
    if in_database(run.action):
        with transaction.atomic():
            if not _still_ours(run):
                return
            _attempt(run)
        return
    _attempt(run, recorded=_record_outside)


def _still_ours(run) -> bool:
    """Lock the run's row; False when another process took it meanwhile (its lease ended) or
    it is finished."""
    return ActionRun.objects.select_for_update().filter(pk=run.pk, status=ActionRun.RUNNING, attempts=run.attempts).exists()


def _attempt(run, recorded=None) -> None:
    run.exchange = {}
    started = time.monotonic()
    try:
        if recorded is None:
            # A savepoint: a failing action's writes go, the outcome is still recorded.
            with transaction.atomic():
                status = perform(run)
        else:
            status = perform(run)
    except Exception as e:  # noqa: BLE001 - any failure of the action is recorded, not raised
        if recorded is None and dbfaults.is_unavailable(e):
            raise
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
        fields = ["status", "last_error", "response_status", "next_attempt", "finished", "exchanges"]
        event = ("failed", {"reason": run.last_error, "status_code": status}) if final else None
    else:
        exchanges.record(run, run.exchange, started, time.monotonic(), run.attempts, None)
        run.status = ActionRun.SUCCEEDED
        run.response_status = status
        run.finished = timezone.now()
        fields = ["status", "response_status", "finished", "exchanges"]
        event = ("executed", {"status_code": status} if status is not None else {})
    (recorded or _record_inside)(run, fields, event)


def _record_inside(run, fields: list[str], event: tuple[str, dict] | None) -> None:
    run.save(update_fields=fields)
    if event is not None:
        action_event(run, *event)


def _record_outside(run, fields: list[str], event: tuple[str, dict] | None) -> None:
    """The outcome of an action that reached outside. It is done: while the database is away the
    outcome is kept and written again every second until the lease is nearly over (after that
    another process may run it again, and its outcome is the one that counts)."""
    deadline = time.monotonic() + max(0.0, (run.next_attempt - timezone.now()).total_seconds() - 5)
    while True:
        try:
            with transaction.atomic():
                if not _still_ours(run):
                    log.warning("automation %s action %d: taken again by another process before its outcome was recorded",
                                run.automation_id, run.index)
                    return
                _record_inside(run, fields, event)
            return
        except Exception as e:
            if not dbfaults.is_unavailable(e) or time.monotonic() > deadline:
                raise
            log.warning("automation %s action %d: done, but the database is away; recording again in 1 s",
                        run.automation_id, run.index)
            connection.close()
            time.sleep(1)


def run_due_actions() -> int:
    """Claim and execute due runs one after another (tests, and a worker without asyncio)."""
    runs = claim_due()
    for run in runs:
        execute(run)
    return len(runs)
