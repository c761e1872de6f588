"""The audit trail: every change of state is an event `eventfeed.audit.<what>` in the feed.

The changed thing is the event's resource, the one who changed it is a related resource with role
`actor` (a user `eventfeed.user.<id>`, an API key `eventfeed.api-key.<id>`, an automation acting
through an action, or `eventfeed.system` for commands), and the payload says what changed. Keys,
secrets, webhook header values and URL paths (a Slack-style URL is itself a secret) never appear.

Who acts is known where the request is: AuditActorMiddleware keeps the request in a context
variable for the code that records (the store functions), which reads its API key or user only
when it records; code that acts outside a request says who acts with `acting(...)`.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import signals as auth_signals
from django.db.models.signals import post_save
from django.dispatch import receiver

from eventfeed.events.emit import emit
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_ROLE

SYSTEM = {RESOURCE_ID: "eventfeed.system", "prefect.resource.name": "Eventfeed (a command or the server itself)"}
REDACTED = "[redacted]"

_request: contextvars.ContextVar[Any] = contextvars.ContextVar("audit_request", default=None)
_actor: contextvars.ContextVar[dict | None] = contextvars.ContextVar("audit_actor", default=None)


def user_resource(user) -> dict[str, str]:
    return {RESOURCE_ID: f"eventfeed.user.{user.pk}", "prefect.resource.name": user.get_username()}


def key_resource(key) -> dict[str, str]:
    return {RESOURCE_ID: f"eventfeed.api-key.{key.pk}", "prefect.resource.name": key.name}


def client_resource(request) -> dict[str, str]:
    address = request.META.get("REMOTE_ADDR") or "unknown"
    return {RESOURCE_ID: f"eventfeed.client.{address}", "prefect.resource.name": address}


def request_actor(request) -> dict[str, str] | None:
    key = getattr(request, "api_key", None)
    if key is not None:
        return key_resource(key)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user_resource(user)
    return None


def current_actor() -> dict[str, str]:
    actor = _actor.get()
    if actor is None and _request.get() is not None:
        actor = request_actor(_request.get())
    return actor or SYSTEM


@contextmanager
def acting(actor: dict[str, str]):
    """Record changes made inside as made by `actor` (an automation's action, say)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


class AuditActorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def record(what: str, resource: dict[str, str], payload: dict | None = None, *, actor: dict[str, str] | None = None) -> None:
    """Emit `eventfeed.audit.<what>` in the caller's transaction."""
    actor = actor or current_actor()
    emit(f"eventfeed.audit.{what}", resource, [{**actor, RESOURCE_ROLE: "actor"}], payload or {})


# -- what an automation's audit payload may show ---------------------------------------------

def redact_url(url: Any) -> Any:
    if not isinstance(url, str):
        return url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}" + ("/…" if parts.path.strip("/") or parts.query else "")


def redact_action(action: Any) -> Any:
    if not isinstance(action, dict):
        return action
    clean = dict(action)
    if isinstance(clean.get("headers"), dict):
        clean["headers"] = {name: REDACTED for name in clean["headers"]}
    if "url" in clean:
        clean["url"] = redact_url(clean["url"])
    return clean


ACTION_FIELDS = ("actions", "actions_on_trigger", "actions_on_resolve")


def shown(field: str, value: Any) -> Any:
    if field in ACTION_FIELDS and isinstance(value, list):
        return [redact_action(a) for a in value]
    return value


def _without_ids(value: Any) -> Any:
    """A trigger as the user wrote it: parsing gives each (child) trigger a new `id`."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict]:
    """{field: {"from": …, "to": …}} for the fields whose value changed, redacted."""
    return {field: {"from": shown(field, before.get(field)), "to": shown(field, value)}
            for field, value in after.items()
            if (_without_ids(before.get(field)) if field == "trigger" else before.get(field))
            != (_without_ids(value) if field == "trigger" else value)}


# -- signing in ------------------------------------------------------------------------------
# Only sign-ins that came over a connection (a request with a client address) are recorded:
# Django's test client and scripts log users in with a bare HttpRequest, which no one can send.

def _over_the_network(request) -> bool:
    return request is not None and bool(request.META.get("REMOTE_ADDR"))


@receiver(auth_signals.user_logged_in, dispatch_uid="eventfeed.audit.sign-in")
def _signed_in(sender, request, user, **kwargs) -> None:
    if not _over_the_network(request):
        return
    record("sign-in", user_resource(user), {"address": request.META.get("REMOTE_ADDR")}, actor=user_resource(user))


@receiver(auth_signals.user_logged_out, dispatch_uid="eventfeed.audit.sign-out")
def _signed_out(sender, request, user, **kwargs) -> None:
    if not _over_the_network(request) or user is None:
        return
    record("sign-out", user_resource(user), {"address": request.META.get("REMOTE_ADDR")}, actor=user_resource(user))


@receiver(auth_signals.user_login_failed, dispatch_uid="eventfeed.audit.sign-in.failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    if not _over_the_network(request):
        return
    from django.contrib.auth import get_user_model

    # Django has already masked the password in `credentials`; only the username is kept.
    username = str(credentials.get("username") or "")[:150]
    user = get_user_model().objects.filter(username=username).first() if username else None
    resource = user_resource(user) if user else {RESOURCE_ID: "eventfeed.user.unknown", "prefect.resource.name": username or "(none)"}
    record("sign-in.failed", resource,
           {"username": username, "address": request.META.get("REMOTE_ADDR"),
            "locked_out": bool(getattr(request, "axes_locked_out", False))},
           actor=client_resource(request))


# -- the admin site --------------------------------------------------------------------------
# Django's admin (/admin/) changes any model it shows, users and API keys included, past the
# functions that record; its own log entry of each change (written in the change's transaction,
# naming fields, never values) becomes the audit event.

_ADMIN_ACTIONS = {1: "added", 2: "changed", 3: "deleted"}  # LogEntry's ADDITION, CHANGE, DELETION


def _admin_resource(entry) -> dict[str, str]:
    label = f"{entry.content_type.app_label}.{entry.content_type.model}" if entry.content_type_id else "unknown"
    if label == "auth.user":
        return {RESOURCE_ID: f"eventfeed.user.{entry.object_id}", "prefect.resource.name": entry.object_repr}
    if label == "events.apikey":
        # A key's str() ends with its first characters, which no audit event shows.
        return {RESOURCE_ID: f"eventfeed.api-key.{entry.object_id}", "prefect.resource.name": entry.object_repr.rsplit(" (", 1)[0]}
    return {RESOURCE_ID: f"eventfeed.admin.{label}.{entry.object_id}", "prefect.resource.name": entry.object_repr}


@receiver(post_save, sender="admin.LogEntry", dispatch_uid="eventfeed.audit.admin")
def _admin_changed(sender, instance, created, **kwargs) -> None:
    what = _ADMIN_ACTIONS.get(instance.action_flag)
    if not created or what is None:
        return
    model = f"{instance.content_type.app_label}.{instance.content_type.model}" if instance.content_type_id else ""
    record(f"admin.{what}", _admin_resource(instance), {"model": model, "change": instance.get_change_message()},
           actor=user_resource(instance.user))
