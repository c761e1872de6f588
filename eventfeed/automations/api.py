"""Prefect's `/api/automations/` REST shapes (PREFECT-COMPAT 1.5), with API-key auth."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required
from eventfeed.events.filter_parsers import JsonReader
from eventfeed.events.problems import BODY_RULE

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
        raise TriggerError([("", BODY_RULE)])
    r = JsonReader()
    r.obj(data, "", {"automations", "sort", "limit", "offset"})
    spec = r.obj(data.get("automations"), "automations", {"id", "name", "created", "tags"})
    ids = r.strings(r.obj(spec.get("id"), "automations.id", {"any_"}).get("any_"), "automations.id.any_")
    names = r.strings(r.obj(spec.get("name"), "automations.name", {"any_"}).get("any_"), "automations.name.any_")
    before = r.time(r.obj(spec.get("created"), "automations.created", {"before_"}).get("before_"), "automations.created.before_", optional=True)
    tags = r.obj(spec.get("tags"), "automations.tags", {"all_", "is_null_"})
    all_tags = r.strings(tags.get("all_"), "automations.tags.all_")
    is_null = tags.get("is_null_")
    if is_null is not None and not isinstance(is_null, bool):
        r.fail("automations.tags.is_null_", "must be true or false")
    qs = Automation.objects.all()
    try:
        uuids = [uuid.UUID(i) for i in ids]
    except ValueError:
        r.fail("automations.id.any_", "must be a list of UUIDs")
    sort = data.get("sort") or "NAME_ASC"
    if sort not in SORTS:
        r.fail("sort", f"must be one of {', '.join(SORTS)}")
    # The SDK's read_automations() sends `"limit": null` for "no limit given".
    limit = MAX_LIMIT if data.get("limit") is None else data["limit"]
    offset = 0 if data.get("offset") is None else data["offset"]
    for key, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (key == "limit" and value > MAX_LIMIT):
            r.fail(key, f"must be a whole number from 0{f' to {MAX_LIMIT}' if key == 'limit' else ''}")
    if r.problems:
        raise TriggerError([(path.lstrip("."), rule) for path, rule in r.problems])
    if "any_" in (spec.get("id") or {}):
        qs = qs.filter(pk__in=uuids)
    if "any_" in (spec.get("name") or {}):
        qs = qs.filter(name__in=names)
    if before is not None:
        qs = qs.filter(created__lte=before)
    rows = list(qs.order_by(SORTS[sort], "id"))
    if all_tags:
        rows = [a for a in rows if set(all_tags) <= set(a.tags)]
    if is_null is not None:
        rows = [a for a in rows if (not a.tags) == is_null]
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
