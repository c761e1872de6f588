"""The debugging API of one automation: try an event against it, replay stored events through it."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required

from eventfeed.events.filter_parsers import from_json
from eventfeed.events.filters import FilterError
from eventfeed.events.problems import BODY_RULE

from . import debugging
from .models import Automation
from .replay import ReplayRefused, replay
from .triggers import TriggerError, parse_trigger


def _automation_and_body(request: HttpRequest, automation_id: str) -> tuple[Automation | None, object, JsonResponse | None]:
    """The automation and the JSON body, or the 404/4xx that says why not."""
    try:
        automation = Automation.objects.filter(pk=uuid.UUID(automation_id)).first()
    except ValueError:
        automation = None
    if automation is None:
        return None, None, api_error(404, "Automation not found.")
    data, error = read_json(request)
    return automation, data, error


@require_POST
@api_key_required(allow_session=True)
def test(request: HttpRequest, automation_id: str) -> JsonResponse:
    """{event} → {"would_fire", "would_resolve", "reasons", "triggers", "firings"}; nothing changes."""
    automation, data, error = _automation_and_body(request, automation_id)
    if error:
        return error
    try:
        event = debugging.parse_test_event(data)
    except TriggerError as e:
        return api_error(422, "The event is not valid.", errors=e.as_list())
    return JsonResponse(debugging.test_event(automation, event))


def _replay_body(data, keys: set) -> tuple[dict, list[dict]]:
    """{"filter": EventFilter, "run_actions": bool[, "trigger": draft]} → (values, errors)."""
    if not isinstance(data, dict):
        return {}, [{"path": "", "rule": BODY_RULE}]
    errors = [{"path": key, "rule": f"is not a field here (expected one of: {', '.join(sorted(keys))})"}
              for key in data if key not in keys]
    out = {}
    try:
        out["filter"] = from_json(data.get("filter") or {}, "filter")
    except FilterError as e:
        errors += e.as_list()
    run_actions = data.get("run_actions", False)
    if not isinstance(run_actions, bool):
        errors.append({"path": "run_actions", "rule": "must be true or false"})
    out["run_actions"] = run_actions is True
    if "trigger" in keys:
        try:
            out["trigger"] = parse_trigger(data.get("trigger"), "trigger")[0]
        except TriggerError as e:
            errors += e.as_list()
    return out, errors


@require_POST
@api_key_required(allow_session=True)
def replay_automation(request: HttpRequest, automation_id: str) -> JsonResponse:
    """Stored events through the automation: a dry run's timeline, or for real (run_actions)."""
    automation, data, error = _automation_and_body(request, automation_id)
    if error:
        return error
    values, errors = _replay_body(data, {"filter", "run_actions"})
    if errors:
        return api_error(422, "The replay is not valid.", errors=errors)
    try:
        trigger, _ = parse_trigger(automation.trigger)
    except TriggerError as e:
        return api_error(422, "The automation's trigger is not valid any more: edit it.", errors=e.as_list())
    try:
        return JsonResponse(replay(trigger, values["filter"], automation=automation, run_actions=values["run_actions"]))
    except ReplayRefused as e:
        return api_error(422, str(e), errors=[{"path": "run_actions", "rule": str(e)}])


@require_POST
@api_key_required(allow_session=True)
def replay_draft(request: HttpRequest) -> JsonResponse:
    """An unsaved trigger through stored events: always a dry run."""
    data, error = read_json(request)
    if error:
        return error
    values, errors = _replay_body(data, {"trigger", "filter", "run_actions"})
    if not errors and values["run_actions"]:
        errors.append({"path": "run_actions", "rule": "an unsaved trigger has no actions to run: save it first"})
    if errors:
        return api_error(422, "The replay is not valid.", errors=errors)
    return JsonResponse(replay(values["trigger"], values["filter"]))


@require_POST
@api_key_required(allow_session=True)
def rerun(request: HttpRequest, automation_id: str, run_id: str) -> JsonResponse:
    """A failed action run again: 202 with the new run's id."""
    try:
        automation = Automation.objects.filter(pk=uuid.UUID(automation_id)).first()
    except ValueError:
        automation = None
    if automation is None:
        return api_error(404, "Automation not found.")
    try:
        again = debugging.rerun_action(automation, run_id)
    except debugging.RerunRefused as e:
        return api_error(409 if "only a failed" in str(e) else 404, f"Not re-run: {e}.")
    return JsonResponse({"id": str(again.id), "rerun_of": run_id, "status": again.status}, status=202)
