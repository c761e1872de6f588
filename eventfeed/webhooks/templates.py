"""From an HTTP request to an event, as Prefect Cloud's webhook templates do it.

The template is Jinja2, rendered in the project's one sandbox (eventfeed.sandbox: bounded in
time and output), with Prefect Cloud's context: `method`, `headers` (any case, without
Authorization), `body` (JSON or a form parsed, else the text), the `tojson` filter and
`from_cloud_event(headers)`. What it renders is the event's JSON; `id`, `occurred` and `payload`
get defaults when it leaves them out, and the webhook itself is added as a related resource.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Mapping
from urllib.parse import parse_qsl

from django.conf import settings

from eventfeed import sandbox
from eventfeed.events import cloudevents, jsoncodec
from eventfeed.events.schema import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, CleanEvent, json_type, validate_event

# Never shown to a template, kept in the request log or put in an event: they carry credentials.
HIDDEN_HEADERS = {"authorization", "cookie"}


class TemplateProblem(Exception):
    """The template could not make an event. `rendered` is what it produced, if it got that far."""

    def __init__(self, message: str, rendered: str = "", errors: list[dict] | None = None):
        super().__init__(message)
        self.rendered = rendered
        self.errors = errors or []


class Headers(dict):
    """The request's headers under their own names, read in any case: headers['content-length']."""

    def __init__(self, items: Mapping[str, str]):
        super().__init__(items)
        self._lower = {k.lower(): k for k in self}

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(self._lower.get(name.lower(), name) if isinstance(name, str) else name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default


def visible_headers(headers: Mapping[str, str], secret_header: str = "") -> Headers:
    """The headers a template, the request log and the event may see: without credentials,
    including the header that carries a shared-secret-header webhook's secret."""
    hidden = HIDDEN_HEADERS | {secret_header.lower()} if secret_header else HIDDEN_HEADERS
    return Headers({k: v for k, v in headers.items() if k.lower() not in hidden})


def parse_body(body: bytes, content_type: str) -> Any:
    """Prefect Cloud's best effort: JSON for application/json, a flat dict for a form, JSON for
    anything else that parses, else the text (undecodable bytes replaced)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        except ValueError:
            return body.decode("utf-8", "replace")
    if not body.strip():
        return "" if media != "application/json" else None
    try:
        return jsoncodec.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")


def from_cloud_event(body: Any, headers: Mapping[str, str]) -> str:
    """The `from_cloud_event` filter: `{{ body|from_cloud_event(headers) }}` renders the whole
    event from a CloudEvent in either HTTP mode. Raises CloudEventError naming the attribute."""
    return jsoncodec.dumps(cloudevents.from_request_parts(body, headers))


def context(method: str, headers: Headers, body: Any) -> dict[str, Any]:
    return {"method": method.upper(), "headers": headers, "body": body}


def limits() -> sandbox.Limits:
    """The sandbox's bounds, except that a rendered event may be as large as an event may be."""
    base = sandbox.default_limits()
    size = settings.EVENTFEED_MAX_EVENT_BYTES
    return replace(base, output=max(base.output, size), value=max(base.value, size))


def render(source: str, ctx: dict[str, Any]) -> str:
    """The template's text, or TemplateProblem with the sandbox's reason (a syntax error, a bad
    CloudEvent, a bound on time or size)."""
    try:
        return sandbox.render(source, ctx, limits=limits())
    except sandbox.SandboxError as e:
        raise TemplateProblem(e.reason) from None


def template_problem(source: Any) -> str | None:
    """Why this cannot be a webhook's template, or None: the API and the form both ask."""
    if not isinstance(source, str) or not source.strip():
        return "must be a non-empty Jinja2 template that renders an event's JSON"
    problems = sandbox.check(source, limits=limits())
    return f"is not a valid template: {'; '.join(problems)}" if problems else None


def build_event(rendered: str, *, webhook, method: str, headers: Headers, body: Any,
                now: datetime | None = None) -> CleanEvent:
    """The event a rendered template describes, with Prefect Cloud's defaults, validated."""
    try:
        raw = jsoncodec.loads(rendered)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise TemplateProblem(f"The template did not render JSON: {getattr(e, 'msg', e)}{where}.", rendered) from None
    if not isinstance(raw, dict):
        raise TemplateProblem(f"The template must render a JSON object, not {json_type(raw)}.", rendered)
    raw = dict(raw)
    raw.setdefault("id", str(uuid.uuid4()))
    raw.setdefault("occurred", (now or datetime.now(timezone.utc)).isoformat())
    raw.setdefault("payload", {"method": method.upper(), "headers": dict(headers), "body": body})
    related = raw.get("related")
    if related is None:
        related = []
    if isinstance(related, list):
        raw["related"] = [*related, {RESOURCE_ID: webhook.resource_id, RESOURCE_ROLE: "webhook", RESOURCE_NAME: webhook.name}]
    event, problems = validate_event(raw)
    if problems:
        raise TemplateProblem(
            "The rendered event is not valid: " + "; ".join(f"{p.path or '(the event)'} {p.rule}" for p in problems[:5]),
            rendered,
            [p.as_dict() for p in problems],
        )
    return event

