"""The HTTP API: ingest (`POST /api/events`) and Prefect-compatible reads."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from . import cloudevents, export, jsoncodec, queries
from eventfeed.dbrouter import reads_from_replica

from .auth import api_error, api_key_required
from .filter_parsers import from_json
from .filters import EventFilter, FilterError
from .ingest import ingest
from .schema import decode_clean, validate_batch, validate_event
from .problems import BODY_RULE, read_time
from .wire import iso, wire

MAX_PAGE = 500
DEFAULT_PAGE = 50
TOKEN_SALT = "eventfeed.filter.next"
TOKEN_MAX_AGE = 3600 * 24


def read_json(request: HttpRequest) -> tuple[Any, JsonResponse | None]:
    """The parsed JSON body, or the 4xx that says why there is none."""
    error = body_problem(request)
    if error:
        return None, error
    return parse_json(request.body)


def body_problem(request: HttpRequest) -> JsonResponse | None:
    """The 4xx for a body too big, empty or not JSON by its Content-Type; None when it may be read."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.EVENTFEED_MAX_REQUEST_BYTES:
        return api_error(
            413, f"The body is {length:,} bytes; the limit is {settings.EVENTFEED_MAX_REQUEST_BYTES:,} bytes per request."
        )
    if not request.body.strip():
        return api_error(400, "The body is empty: send JSON.")
    content_type = request.content_type or ""
    if content_type != "application/json":
        return api_error(415, f"Content-Type must be application/json, not {content_type or 'missing'}.")
    return None


def parse_json(body: bytes) -> tuple[Any, JsonResponse | None]:
    try:
        return jsoncodec.loads(body), None
    except UnicodeDecodeError:
        return None, api_error(400, "The body is not UTF-8 text.")
    except json.JSONDecodeError as e:
        return None, api_error(400, f"The body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")


@require_POST
@api_key_required
def events_ingest(request: HttpRequest) -> JsonResponse:
    ce_mode = cloudevents.mode(request)
    if ce_mode:
        return cloudevents.ingest_request(request, ce_mode)
    error = body_problem(request)
    if error:
        return error
    # A valid body (nearly every one) is parsed and checked in one pass; any other goes the
    # long way below, which names every problem's path and rule.
    events = decode_clean(request.body)
    if events is not None:
        request._body = b""  # let go once parsed, as below
        return JsonResponse(ingest(events).as_dict(), status=200)
    data, error = parse_json(request.body)
    if error:
        return error
    # From here the parsed events hold everything: the raw body would stay beside them through
    # validation, COPY and publishing, one more copy of the largest request.
    request._body = b""
    single = isinstance(data, dict)
    items = [data] if single else data
    if not isinstance(items, list):
        return api_error(400, "The body must be a JSON array of events or one event object.")
    if not items:
        return api_error(400, "The array is empty: send at least one event.")
    if len(items) > settings.EVENTFEED_MAX_BATCH:
        return api_error(413, f"The batch has {len(items):,} events; the limit is {settings.EVENTFEED_MAX_BATCH:,} events per request.")
    if single:
        # A single event's paths read `related[1]…`, a batch's `[3].related[1]…`.
        event, problems = validate_event(data)
        events = [event] if event is not None else []
    else:
        events, problems = validate_batch(items)
    if problems:
        return api_error(
            422,
            f"{len(problems)} problem(s) in {len({p.index for p in problems})} event(s); nothing was stored.",
            errors=[p.as_dict() for p in problems],
        )
    result = ingest(events)
    return JsonResponse(result.as_dict(), status=200)


def _filter_body(data: Any) -> tuple[EventFilter, int]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FilterError([("", BODY_RULE)])
    unknown = set(data) - {"filter", "limit"}
    if unknown:
        raise FilterError([(k, "is not a known field (expected filter, limit)") for k in sorted(unknown)])
    f = from_json(data.get("filter"))
    limit = data.get("limit", DEFAULT_PAGE)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_PAGE:
        raise FilterError([("limit", f"must be an integer from 0 to {MAX_PAGE}")])
    return f, limit


def _page(request: HttpRequest, raw_filter: Any, f: EventFilter, limit: int, after, total: int | None) -> JsonResponse:
    events, more = f.page(limit=limit, after=after) if limit else ([], False)
    if total is None:
        total = queries.capped_count(f)
    next_page = None
    if more:
        last = events[-1]
        token = signing.dumps(
            {"f": raw_filter, "l": limit, "t": total, "o": iso(last.occurred), "i": str(last.id)}, salt=TOKEN_SALT
        )
        next_page = request.build_absolute_uri(reverse("api-events-filter-next")) + "?page-token=" + token
    return JsonResponse({"events": [wire(e) for e in events], "total": total, "next_page": next_page})


@require_POST
@api_key_required(allow_session=True)
@reads_from_replica
def events_filter(request: HttpRequest) -> JsonResponse:
    data, error = read_json(request) if request.body.strip() else ({}, None)
    if error:
        return error
    try:
        f, limit = _filter_body(data)
    except FilterError as e:
        return api_error(422, "The filter is not valid.", errors=e.as_list())
    # The token carries the filter with its time range pinned, so later pages stay the same set.
    raw = (data or {}).get("filter") or {}
    return _page(request, raw, f, limit, None, None)


@require_GET
@api_key_required(allow_session=True)
@reads_from_replica
def events_filter_next(request: HttpRequest) -> JsonResponse:
    token = request.GET.get("page-token", "")
    if not token:
        return api_error(400, "page-token is required.")
    try:
        state = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE)
        f = from_json(state["f"])
        after = (read_time(state["o"]), uuid.UUID(state["i"]))
    except signing.SignatureExpired:
        return api_error(400, "page-token has expired (tokens last 24 hours): run the query again.")
    except (signing.BadSignature, KeyError, TypeError, ValueError, FilterError):
        return api_error(400, "page-token is not valid: use the next_page URL exactly as returned.")
    return _page(request, state["f"], f, state["l"], after, state["t"])


def _count_body(data: Any, countable: str) -> tuple[EventFilter, float]:
    if not isinstance(data, dict):
        raise FilterError([("", BODY_RULE)])
    unknown = set(data) - {"filter", "time_unit", "time_interval"}
    if unknown:
        raise FilterError([(k, "is not a known field (expected filter, time_unit, time_interval)") for k in sorted(unknown)])
    if "filter" not in data:
        raise FilterError([("filter", "is required")])
    f = from_json(data["filter"])
    unit = data.get("time_unit", "day")
    if unit not in queries.UNIT_SECONDS:
        raise FilterError([("time_unit", f"must be one of {', '.join(queries.UNIT_SECONDS)}")])
    interval = data.get("time_interval", 1)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval < 0.01:
        raise FilterError([("time_interval", "must be a number of at least 0.01")])
    if countable == "day":
        unit, interval = "day", 1
    return f, queries.UNIT_SECONDS[unit] * float(interval)


@require_POST
@api_key_required(allow_session=True)
@reads_from_replica
def events_count_by(request: HttpRequest, countable: str) -> JsonResponse:
    if countable not in ("day", "time", "event", "resource"):
        return api_error(404, f"Unknown countable {countable!r}: use day, time, event or resource.")
    data, error = read_json(request)
    if error:
        return error
    try:
        f, seconds = _count_body(data, countable)
    except FilterError as e:
        return api_error(422, "The request is not valid.", errors=e.as_list())
    if countable == "event":
        return JsonResponse(queries.count_by_event(f), safe=False)
    if countable == "resource":
        return JsonResponse(queries.count_by_resource(f), safe=False)
    now = timezone.now()
    # Prefect's defaults for an open range: from the start of today minus 180 days, until now.
    since = f.since or now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=180)
    until = f.until or now
    first, last = queries.bucket_span(since, until, seconds)
    if last - first + 1 > queries.MAX_BUCKETS:
        return api_error(
            422,
            f"That asks for {last - first + 1:,} buckets; the limit is {queries.MAX_BUCKETS}: "
            "use a larger time_unit or time_interval, or a shorter range.",
            errors=[{"path": "time_interval", "rule": f"at most {queries.MAX_BUCKETS} buckets over the filter's range"}],
        )
    buckets = queries.count_by_time(replace(f, since=since, until=until), seconds)
    return JsonResponse([b.as_prefect() for b in buckets], safe=False)



# -- what the Prefect SDK asks before it sends anything -----------------------------------------

# The Prefect API version Eventfeed speaks (PREFECT-COMPAT.md). The SDK refuses a server of
# another major version and warns about an older one.
PREFECT_API_VERSION = "3.9.1"


@require_GET
def admin_version(request: HttpRequest) -> JsonResponse:
    return JsonResponse(PREFECT_API_VERSION, safe=False)


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(True, safe=False)


@require_GET
def csrf_token(request: HttpRequest) -> JsonResponse:
    # Prefect's own answer when its CSRF protection is off: the SDK then stops asking. API keys,
    # not cookies, authenticate the API, so there is nothing for a CSRF token to protect.
    return api_error(422, "CSRF protection is disabled.")


@require_POST
@api_key_required(allow_session=True)
@reads_from_replica
def events_export(request: HttpRequest):
    """Every event the filter matches, streamed: `?format=ndjson` (default) or `csv`."""
    fmt = request.GET.get("format", "ndjson")
    if fmt not in export.FORMATS:
        return api_error(422, "The request is not valid.", errors=[{"path": "format", "rule": "must be ndjson or csv"}])
    data, error = read_json(request) if request.body.strip() else ({}, None)
    if error:
        return error
    try:
        if not isinstance(data, dict):
            raise FilterError([("", BODY_RULE)])
        unknown = set(data) - {"filter"}
        if unknown:
            raise FilterError([(k, "is not a known field (expected filter)") for k in sorted(unknown)])
        f = from_json(data.get("filter"))
    except FilterError as e:
        return api_error(422, "The filter is not valid.", errors=e.as_list())
    return export.response(request, f, fmt)
