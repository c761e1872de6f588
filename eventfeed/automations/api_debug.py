"""The debugging API of one automation: try an event against it, replay stored events through it."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from eventfeed.events.api import read_json
from eventfeed.events.auth import api_error, api_key_required

from . import debugging
from .models import Automation
from .triggers import TriggerError


def _automation(automation_id: str) -> Automation | None:
    try:
        return Automation.objects.filter(pk=uuid.UUID(automation_id)).first()
    except ValueError:
        return None


@require_POST
@api_key_required(allow_session=True)
def test(request: HttpRequest, automation_id: str) -> JsonResponse:
    """{event} → {"would_fire", "would_resolve", "reasons", "triggers", "firings"}; nothing changes."""
    automation = _automation(automation_id)
    if automation is None:
        return api_error(404, "Automation not found.")
    data, error = read_json(request)
    if error:
        return error
    try:
        event = debugging.parse_test_event(data)
    except TriggerError as e:
        return api_error(422, "The event is not valid.", errors=e.as_list())
    return JsonResponse(debugging.test_event(automation, event))
