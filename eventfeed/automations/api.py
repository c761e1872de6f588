"""Prefect's `/api/automations/` REST shapes (PREFECT-COMPAT 1.5), with API-key auth."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required
from eventfeed.events.schema import parse_time

from . import store
from .models import Automation
from .triggers import TriggerError

SORTS = {"CREATED_DESC": "-created", "UPDATED_DESC": "-updated", "NAME_ASC": "name", "NAME_DESC": "-name"}
MAX_LIMIT = 200
DEFAULTS = {"description": "", "enabled": True, "tags": [], "actions": [], "actions_on_trigger": [], "actions_on_resolve": [],
            "owner_resource": None}


def invalid(e: TriggerError) -> JsonResponse:
    return api_error(422, "The automation is not valid.", errors=e.as_list())


def _body(request: HttpRequest, *, optional: bool = False) -> tuple[Any, JsonResponse | None]:
    if optional and not request.body.strip():
        return {}, None
    return read_json(request)


@require_POST
@api_key_required
def create(request: HttpRequest) -> JsonResponse:
    data, error = _body(request)
    if error:
        return error
    try:
        fields = store.parse_automation(data)
    except TriggerError as e:
        return invalid(e)
    automation = store.save_automation({**DEFAULTS, **fields})
    return JsonResponse(store.automation_json(automation), status=201)


def _get(automation_id: str) -> Automation | None:
    try:
        return Automation.objects.filter(pk=uuid.UUID(automation_id)).first()
    except ValueError:
        return None


@require_http_methods(["GET", "PUT", "PATCH", "DELETE"])
@api_key_required
def item(request: HttpRequest, automation_id: str) -> HttpResponse:
    automation = _get(automation_id)
    if automation is None:
        return api_error(404, "Automation not found.")
    if request.method == "GET":
        return JsonResponse(store.automation_json(automation))
    if request.method == "DELETE":
        store.delete_automation(automation)
        return HttpResponse(status=204)
    data, error = _body(request)
    if error:
        return error
    if request.method == "PATCH":
        # Prefect's AutomationPartialUpdate has exactly one field.
        if not isinstance(data, dict) or set(data) != {"enabled"} or not isinstance(data["enabled"], bool):
            return api_error(422, "PATCH takes {\"enabled\": true|false}.", errors=[{"path": "enabled", "rule": "is required: true or false"}])
        store.set_enabled(automation, data["enabled"])
        return HttpResponse(status=204)
    try:
        fields = store.parse_automation(data)
    except TriggerError as e:
        return invalid(e)
    store.save_automation({**DEFAULTS, **fields}, automation)
    return HttpResponse(status=204)


def _filtered(data: Any):
    """Prefect's AutomationFilter: {automations: {id: {any_}, name: {any_}, created: {before_},
    tags: {all_, is_null_}}, sort, limit, offset}."""
    if not isinstance(data, dict):
        raise TriggerError([("", "the body must be a JSON object")])
    problems = [(k, "is not a known field (expected automations, sort, limit, offset)") for k in data
                if k not in {"automations", "sort", "limit", "offset"}]
    qs = Automation.objects.all()
    spec = data.get("automations") or {}
    if not isinstance(spec, dict):
        raise TriggerError([("automations", "must be an object")])
    if (ids := (spec.get("id") or {}).get("any_")) is not None:
        try:
            qs = qs.filter(pk__in=[uuid.UUID(str(i)) for i in ids])
        except ValueError:
            problems.append(("automations.id.any_", "must be a list of UUIDs"))
    if (names := (spec.get("name") or {}).get("any_")) is not None:
        qs = qs.filter(name__in=names)
    if (before := (spec.get("created") or {}).get("before_")) is not None:
        when = parse_time(before)
        if when is None:
            problems.append(("automations.created.before_", "must be an ISO 8601 date-time"))
        else:
            qs = qs.filter(created__lte=when)
    tags = spec.get("tags") or {}
    sort = data.get("sort") or "NAME_ASC"
    if sort not in SORTS:
        problems.append(("sort", f"must be one of {', '.join(SORTS)}"))
    limit, offset = data.get("limit", MAX_LIMIT), data.get("offset", 0)
    for key, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (key == "limit" and value > MAX_LIMIT):
            problems.append((key, f"must be a whole number from 0{f' to {MAX_LIMIT}' if key == 'limit' else ''}"))
    if problems:
        raise TriggerError(problems)
    rows = list(qs.order_by(SORTS[sort], "id"))
    if tags.get("all_"):
        rows = [a for a in rows if set(tags["all_"]) <= set(a.tags)]
    if tags.get("is_null_") is not None:
        rows = [a for a in rows if (not a.tags) == bool(tags["is_null_"])]
    return rows, limit, offset


@require_POST
@api_key_required
def filter_automations(request: HttpRequest) -> JsonResponse:
    data, error = _body(request, optional=True)
    if error:
        return error
    try:
        rows, limit, offset = _filtered(data)
    except TriggerError as e:
        return invalid(e)
    return JsonResponse([store.automation_json(a) for a in rows[offset : offset + limit]], safe=False)


@require_POST
@api_key_required
def count(request: HttpRequest) -> JsonResponse:
    data, error = _body(request, optional=True)
    if error:
        return error
    try:
        rows, _, _ = _filtered({k: v for k, v in data.items() if k not in ("limit", "offset")} if isinstance(data, dict) else data)
    except TriggerError as e:
        return invalid(e)
    return JsonResponse(len(rows), safe=False)


@require_GET
@api_key_required
def related_to(request: HttpRequest, resource_id: str) -> JsonResponse:
    return JsonResponse([store.automation_json(a) for a in store.related_to(resource_id)], safe=False)


@require_http_methods(["DELETE"])
@api_key_required
def owned_by(request: HttpRequest, resource_id: str) -> HttpResponse:
    for automation in Automation.objects.filter(owner_resource=resource_id):
        store.delete_automation(automation)
    return HttpResponse(status=202)
