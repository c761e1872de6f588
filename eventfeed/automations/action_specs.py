"""Actions' JSON shapes: what each action type takes, validated with the JSON path of every
problem, and how the API shows them. Running them is actions.py; the automation store (below
the runner) validates with this module alone."""

from __future__ import annotations

import uuid
from typing import Any

from eventfeed import outbound, sandbox
from eventfeed.events.problems import Problems

from .triggers import TriggerError

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 60.0

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


def _check_template(r: Problems, value: Any, path: str) -> None:
    if not isinstance(value, str):
        r.wrong_type(path, "a string (a Jinja template)", value)
        return
    for problem in sandbox.check(value):
        r.fail(path, f"is not a valid template: {problem}")


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


def _check_channel(r: Problems, clean: dict, p: str, kind: str) -> None:
    """Prefect's CallWebhook / SendNotification: the channel must exist and be able to do it."""
    from eventfeed.blocks.kinds import apprise_url
    from eventfeed.blocks.store import find_document

    r.unknown_fields(clean, p, CHANNEL_FIELDS[kind] | {"type"}, f"{kind} with a block_document_id")
    doc = find_document(clean.get("block_document_id"))
    if doc is None:
        r.fail(f"{p}.block_document_id", "must be the id of a channel (a block document); see /settings/channels/")
        return
    clean["block_document_id"] = str(doc.id)
    slug = doc.block_type.slug
    if kind == "call-webhook" and slug != "webhook":
        r.fail(f"{p}.block_document_id", f"names a {slug} block; call-webhook needs a webhook block")
    if kind == "send-notification" and slug not in ("webhook", "eventfeed-email") and apprise_url(slug, doc.data) is None:
        r.fail(f"{p}.block_document_id", f"names a {slug} block, which Eventfeed cannot send notifications to")
    if kind == "call-webhook":
        _check_template(r, clean.setdefault("payload", ""), f"{p}.payload")
    else:
        _check_template(r, clean.setdefault("subject", "Prefect automated notification"), f"{p}.subject")
        _check_template(r, clean.setdefault("body", ""), f"{p}.body")


def parse_actions(data: Any, path: str = "actions") -> list[dict]:
    if data is None:
        return []
    r = Problems()
    if not isinstance(data, list):
        r.wrong_type(path, "a list of actions", data)
        raise TriggerError(r.problems)
    out = []
    for i, action in enumerate(data):
        p = f"{path}[{i}]"
        if not isinstance(action, dict):
            r.fail(p, "must be an object with a type")
            continue
        kind = action.get("type") or default_action_type(action)
        kind = OWN_FORMS.get(kind, kind)
        if kind is None:
            r.fail(f"{p}.type", f"is required: one of {', '.join(sorted(SUPPORTED))}")
            continue
        if kind in PREFECT_ONLY:
            r.fail(f"{p}.type", f"{kind} acts on Prefect objects Eventfeed does not have; supported: {', '.join(sorted(SUPPORTED))}")
            continue
        if kind not in SUPPORTED:
            r.fail(f"{p}.type", f"must be one of: {', '.join(sorted(SUPPORTED))}")
            continue
        r.unknown_fields(action, p, SUPPORTED[kind] | {"type"}, kind)
        clean = dict(action, type=kind)
        if "block_document_id" in action and kind in ("call-webhook", "send-notification"):
            _check_channel(r, clean, p, kind)
        elif kind == "call-webhook":
            url = action.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                r.fail(f"{p}.url", "is required: an http:// or https:// URL")
            elif refused := outbound.refusal(url):
                r.fail(f"{p}.url", f"cannot be called: {refused}")
            method = clean.setdefault("method", "POST")
            if method not in METHODS:
                r.fail(f"{p}.method", f"must be one of: {', '.join(sorted(METHODS))}")
            headers = clean.setdefault("headers", {})
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                r.fail(f"{p}.headers", "must be an object of header: string value")
            _check_template(r, clean.setdefault("payload", ""), f"{p}.payload")
            timeout = clean.setdefault("timeout", DEFAULT_TIMEOUT)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT:
                r.fail(f"{p}.timeout", f"must be a number of seconds from 0 to {MAX_TIMEOUT:g}")
        elif kind == "send-notification":
            _check_template(r, clean.setdefault("subject", "{{ automation.name }} fired"), f"{p}.subject")
            _check_template(r, clean.setdefault("body", ""), f"{p}.body")
            to = clean.setdefault("to", [])
            if not isinstance(to, list) or not all(isinstance(x, str) and "@" in x for x in to):
                r.fail(f"{p}.to", "must be a list of email addresses")
        elif kind == "emit-event":
            _check_template(r, clean.get("event"), f"{p}.event")
            resource = clean.setdefault("resource", {})
            if not isinstance(resource, dict) or not all(isinstance(v, str) for v in resource.values()):
                r.fail(f"{p}.resource", "must be an object of string labels (templates allowed)")
            related = clean.setdefault("related", [])
            if not isinstance(related, list) or not all(isinstance(item, dict) for item in related):
                r.fail(f"{p}.related", "must be a list of label objects")
            if not isinstance(clean.setdefault("payload", {}), dict):
                r.fail(f"{p}.payload", "must be an object")
        elif kind in ("pause-automation", "resume-automation"):
            source = clean.setdefault("source", "inferred")
            if source not in ("selected", "inferred"):
                r.fail(f"{p}.source", 'must be "selected" or "inferred" (this automation)')
            target = clean.setdefault("automation_id", None)
            if source == "selected":
                try:
                    uuid.UUID(str(target))
                except ValueError:
                    r.fail(f"{p}.automation_id", "must be the UUID of an automation when source is selected")
        out.append(clean)
    if r:
        raise TriggerError(r.problems)
    return out
