"""CloudEvents 1.0 in, Prefect events out: the HTTP binding's three modes on `POST /api/events`,
and the mapping that webhook templates reach as `from_cloud_event`.

Parsed by the spec here rather than with the `cloudevents` SDK: the SDK has no batched mode,
makes up an `id` and a `time` that a sender left out (a missing `id` must be refused: it is how
retries dedupe), and reports problems as exceptions per attribute without a JSON path.

The mapping is Prefect Cloud's `from_cloud_event`: `type` → `event`, `time` → `occurred` (now if
absent), `subject` (else `source`) → `resource["prefect.resource.id"]`, `data` → `payload.data`
(`data_base64` stays base64 text in `payload.data_base64`), every other attribute and extension
→ `payload.cloudevents`, and `id` → `id` when it is a UUID, else `uuid5(NAMESPACE_URL,
json([source, id]))`, so a sender's retry of the same event is stored once.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from . import jsoncodec
from .auth import api_error
from .problems import TimeRuleBroken, read_time
from .schema import RESOURCE_ID, Problem, json_type, validate_event

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
HEADER_PREFIX = "ce-"
CONTEXT_ATTRIBUTES = {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
REQUIRED = ("id", "source", "specversion", "type")
# The spec: extension names are lower-case ASCII letters and digits; 20 characters is its advice.
EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
JSON_MEDIA = re.compile(r"^(application|text)/([a-z0-9.+-]+\+)?json$")

# Where a problem that validation finds in the mapped Prefect event lies in the CloudEvent.
PREFECT_TO_CLOUDEVENT = {"event": "type", "occurred": "time", "id": "id", "resource": "subject"}


class CloudEventError(ValueError):
    """A CloudEvent that cannot become an event: the problems name the attribute."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.path or '(the event)'}: {p.rule}" for p in problems))
        self.problems = problems


def mode(request: HttpRequest) -> str | None:
    """Which CloudEvents mode a request to `POST /api/events` uses, or None for Prefect's shape."""
    content_type = request.content_type or ""
    if content_type == STRUCTURED:
        return "structured"
    if content_type == BATCH:
        return "batched"
    if "ce-specversion" in request.headers:
        return "binary"
    return None


def is_json_media(content_type: str | None) -> bool:
    return content_type is None or bool(JSON_MEDIA.match(content_type.split(";")[0].strip().lower()))


def event_id(source: str, ce_id: str) -> uuid.UUID:
    """The event's id: the CloudEvent's own when it is a UUID, else one derived from source and id."""
    try:
        return uuid.UUID(ce_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([source, ce_id], ensure_ascii=False))


def to_prefect(attributes: dict[str, Any], data: Any = None, *, has_data: bool = False, index: int = 0,
               base: str = "", now: datetime | None = None) -> tuple[dict | None, list[Problem]]:
    """A CloudEvent's attributes (and data) as a raw Prefect event, or the problems that say why not.

    Paths name the CloudEvent's attributes, prefixed with `base` (`[3].` in a batch, `ce-` for
    binary mode's headers).
    """
    problems: list[Problem] = []

    def fail(name: str, rule: str) -> None:
        problems.append(Problem(index, base + name, rule))

    for name in REQUIRED:
        value = attributes.get(name)
        if name not in attributes:
            fail(name, "is required")
        elif not isinstance(value, str):
            fail(name, f"must be a string, not {json_type(value)}")
        elif not value:
            fail(name, "must not be empty")
    if isinstance(attributes.get("specversion"), str) and attributes["specversion"] and attributes["specversion"] != "1.0":
        fail("specversion", "must be 1.0 (the only CloudEvents version taken)")
    for name in ("subject", "datacontenttype", "dataschema", "time"):
        if name in attributes and (not isinstance(attributes[name], str) or not attributes[name]):
            fail(name, f"must be a non-empty string, not {json_type(attributes[name]) if not isinstance(attributes[name], str) else 'an empty one'}")
    occurred = now or datetime.now(timezone.utc)
    if isinstance(attributes.get("time"), str) and attributes["time"]:
        try:
            occurred = read_time(attributes["time"])
        except TimeRuleBroken as e:
            fail("time", e.rule)
    extensions = {}
    for name, value in attributes.items():
        if name in CONTEXT_ATTRIBUTES or name in ("data", "data_base64"):
            continue
        if not EXTENSION_NAME.fullmatch(name):
            fail(name, "is not a CloudEvents attribute: extension names are 1 to 20 lower-case letters and digits")
        elif isinstance(value, (dict, list)) or value is None:
            fail(name, f"an extension must be a string, a number or a boolean, not {json_type(value)}")
        else:
            extensions[name] = value
    if problems:
        return None, problems

    payload: dict[str, Any] = {}
    if "data_base64" in attributes:
        if has_data:
            fail("data_base64", "must not be sent together with data")
            return None, problems
        if not isinstance(attributes["data_base64"], str):
            fail("data_base64", f"must be base64 text, not {json_type(attributes['data_base64'])}")
            return None, problems
        payload["data_base64"] = attributes["data_base64"]
    elif has_data:
        payload["data"] = data
    payload["cloudevents"] = {k: v for k, v in attributes.items() if k in CONTEXT_ATTRIBUTES} | extensions
    raw = {
        "id": str(event_id(attributes["source"], attributes["id"])),
        "occurred": occurred.isoformat(),
        "event": attributes["type"],
        "resource": {RESOURCE_ID: attributes.get("subject") or attributes["source"]},
        "related": [],
        "payload": payload,
    }
    return raw, []


def _clean(raw: dict, index: int, base: str):
    """Validate a mapped event; problems are named by the CloudEvent attribute they came from."""
    event, problems = validate_event(raw, index, base="")
    cloudevent = raw["payload"]["cloudevents"]
    for p in problems:
        path = p.path.lstrip(".")
        if path.startswith("payload"):
            rest = path.removeprefix("payload")
            if rest.startswith('["cloudevents"]['):
                # An attribute's value: its name is the next key.
                path = json.loads(rest.removeprefix('["cloudevents"]').split("]")[0] + "]")[0]
            else:
                path = rest.removeprefix('["').replace('"]', "", 1) if rest.startswith('["') else rest.lstrip(".")
        elif path.startswith("resource"):
            path = "subject" if "subject" in cloudevent else "source"
        else:
            head = re.split(r"[.\[]", path, maxsplit=1)[0]
            path = PREFECT_TO_CLOUDEVENT.get(head, head)
        # The event as a whole (its size): `[3]` in a batch, no path for a single event.
        p.path = base + path if path else base.removesuffix(".").removeprefix(HEADER_PREFIX)
    return event, problems


def from_structured(value: Any, index: int = 0, base: str = ""):
    """(CleanEvent, []) or (None, problems) for one structured-mode CloudEvent (a JSON object)."""
    if not isinstance(value, dict):
        return None, [Problem(index, base.rstrip("."), f"a CloudEvent must be a JSON object, not {json_type(value)}")]
    attributes = {k: v for k, v in value.items() if k != "data"}
    raw, problems = to_prefect(attributes, value.get("data"), has_data="data" in value, index=index, base=base)
    if problems:
        return None, problems
    return _clean(raw, index, base)


def binary_attributes(headers) -> dict[str, str]:
    """The context attributes of a binary-mode message: its `ce-` headers, percent-decoded as the
    HTTP binding says, and its Content-Type as `datacontenttype`."""
    attributes = {k.lower()[len(HEADER_PREFIX):]: unquote(v) for k, v in headers.items() if k.lower().startswith(HEADER_PREFIX)}
    content_type = headers.get("Content-Type")
    if content_type:
        attributes["datacontenttype"] = content_type
    return attributes


def binary_data(body: bytes, content_type: str | None) -> tuple[Any, list[str]]:
    """A binary-mode body as event data: parsed JSON for a JSON media type, else the text, else
    base64 (returned as the second value's marker `data_base64`)."""
    if not body:
        return None, []
    if is_json_media(content_type):
        try:
            return jsoncodec.loads(body), []
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            return None, [f"the body is {content_type} but not valid JSON ({getattr(e, 'msg', e)})"]
    try:
        return body.decode("utf-8"), []
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), ["base64"]


def from_binary(headers, body: bytes):
    attributes = binary_attributes(headers)
    data, notes = binary_data(body, attributes.get("datacontenttype"))
    if notes and notes[0] != "base64":
        return None, [Problem(0, "body", notes[0])]
    if notes:
        attributes["data_base64"] = data
        data = None
    raw, problems = to_prefect(attributes, data, has_data=bool(body) and not notes, base=HEADER_PREFIX)
    if problems:
        return None, problems
    return _clean(raw, 0, HEADER_PREFIX)


def from_request_parts(body: Any, headers) -> dict:
    """The raw Prefect event for a webhook request that carries a CloudEvent in either mode:
    binary when it has a `ce-specversion` header, else structured. Raises CloudEventError."""
    if "ce-specversion" in {k.lower() for k in headers}:
        attributes = binary_attributes(headers)
        raw, problems = to_prefect(attributes, body, has_data=body not in (None, "", b""), base=HEADER_PREFIX)
    elif isinstance(body, dict):
        attributes = {k: v for k, v in body.items() if k != "data"}
        raw, problems = to_prefect(attributes, body.get("data"), has_data="data" in body)
    else:
        raw, problems = None, [Problem(0, "", "the request carries no CloudEvent: neither ce- headers nor a JSON object body")]
    if problems:
        raise CloudEventError(problems)
    return raw


def ingest_request(request: HttpRequest, which: str) -> JsonResponse:
    """`POST /api/events` in a CloudEvents mode, after the API key was checked. All or nothing."""
    from .ingest import ingest  # storage sits below the doors; imported where used

    limit = settings.EVENTFEED_MAX_REQUEST_BYTES
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        return api_error(413, f"The body is {length:,} bytes; the limit is {limit:,} bytes per request.")
    body = request.body
    if which == "binary":
        event, problems = from_binary(request.headers, body)
        events = [event] if event else []
    else:
        if not body.strip():
            return api_error(400, "The body is empty: send a CloudEvent in JSON.")
        try:
            data = jsoncodec.loads(body)
        except UnicodeDecodeError:
            return api_error(400, "The body is not UTF-8 text.")
        except json.JSONDecodeError as e:
            return api_error(400, f"The body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
        if which == "structured":
            event, problems = from_structured(data)
            events = [event] if event else []
        else:
            if not isinstance(data, list):
                return api_error(400, f"A {BATCH} body must be a JSON array of CloudEvents, not {json_type(data)}.")
            if not data:
                return api_error(400, "The array is empty: send at least one CloudEvent.")
            if len(data) > settings.EVENTFEED_MAX_BATCH:
                return api_error(413, f"The batch has {len(data):,} events; the limit is {settings.EVENTFEED_MAX_BATCH:,} events per request.")
            events, problems = [], []
            for i, item in enumerate(data):
                event, errs = from_structured(item, i, f"[{i}].")
                problems.extend(errs)
                if event:
                    events.append(event)
    if problems:
        return api_error(
            422,
            f"{len(problems)} problem(s) in {len({p.index for p in problems})} CloudEvent(s); nothing was stored.",
            errors=[p.as_dict() for p in problems],
        )
    return JsonResponse(ingest(events).as_dict(), status=200)
