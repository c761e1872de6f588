"""Writes and reads of automations, beside the models: the views and the API call these."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from eventfeed import audit
from eventfeed.events.emit import emit
from eventfeed.events.patterns import glob_match
from eventfeed.events.problems import BODY_RULE, Problems
from eventfeed.events.schema import RESOURCE_ID
from eventfeed.events.wire import iso

from .action_specs import as_prefect, parse_actions
from .core import new_state, next_due
from .models import Automation, TriggerState
from .triggers import TriggerError, parse_trigger

FIELDS = {"name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger", "actions_on_resolve", "owner_resource"}


def parse_automation(data: Any, *, partial: bool = False) -> dict:
    """Prefect's AutomationCreate body → clean fields, or TriggerError naming the JSON path."""
    r = Problems()
    if not isinstance(data, dict):
        raise TriggerError([("", BODY_RULE)])
    r.unknown_fields(data, "", FIELDS, "an automation")
    out: dict[str, Any] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            r.fail("name", "is required: a non-empty string")
        elif len(name) > 200:
            r.fail("name", "is at most 200 characters")
        else:
            out["name"] = name.strip()
    if "description" in data:
        if not isinstance(data["description"], str):
            r.wrong_type("description", "a string", data["description"])
        else:
            out["description"] = data["description"]
    if "enabled" in data:
        enabled = r.boolean(data["enabled"], "enabled")
        if enabled is not None:
            out["enabled"] = enabled
    if "tags" in data:
        tags = data["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            r.wrong_type("tags", "a list of strings", tags)
        else:
            out["tags"] = tags
    if "owner_resource" in data:
        owner = data["owner_resource"]
        if owner is not None and not isinstance(owner, str):
            r.wrong_type("owner_resource", "a resource id string or null", owner)
        else:
            out["owner_resource"] = owner
    if "trigger" in data or not partial:
        try:
            out["trigger"] = parse_trigger(data.get("trigger"), "trigger")[1]
        except TriggerError as e:
            r.extend(e.problems)
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        if key in data:
            try:
                out[key] = parse_actions(data[key], key)
            except TriggerError as e:
                r.extend(e.problems)
    if r:
        raise TriggerError(r.problems)
    return out


def _reset_state(automation: Automation) -> None:
    """A new or changed trigger starts from empty buckets."""
    trigger, _ = parse_trigger(automation.trigger)
    state = new_state()
    due = next_due(trigger, state)
    TriggerState.objects.update_or_create(
        automation=automation, defaults={"state": state, "next_due": timezone.now() if due is not None else None}
    )


def save_automation(fields: dict, automation: Automation | None = None) -> Automation:
    """Create (automation=None) or replace/patch an automation; emits prefect.automation.created /
    .updated like Prefect."""
    with transaction.atomic():
        created = automation is None
        automation = automation or Automation()
        before = {} if created else {key: getattr(automation, key) for key in fields}
        reset = created or ("trigger" in fields and fields["trigger"] != automation.trigger) or (
            fields.get("enabled") and not automation.enabled
        )
        for key, value in fields.items():
            setattr(automation, key, value)
        automation.save()
        if reset:
            _reset_state(automation)
        emit_change(automation, "created" if created else "updated")
        _audit_save(automation, created, before, fields)
    return automation


def _audit_save(automation: Automation, created: bool, before: dict, fields: dict) -> None:
    resource = {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name}
    if created:
        audit.record("automation.created", resource, {"automation": {k: audit.shown(k, v) for k, v in fields.items()}})
        return
    changed = audit.changes(before, fields)
    toggled = changed.pop("enabled", None)
    if changed:
        audit.record("automation.updated", resource, {"changed": changed})
    if toggled:
        audit.record("automation.enabled" if automation.enabled else "automation.disabled", resource, {})


def set_enabled(automation: Automation, enabled: bool) -> Automation:
    return save_automation({"enabled": enabled}, automation)


def delete_automation(automation: Automation) -> None:
    with transaction.atomic():
        emit_change(automation, "deleted")
        audit.record("automation.deleted", {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name},
                     {"name": automation.name})
        automation.delete()


def emit_change(automation: Automation, what: str) -> None:
    emit(f"prefect.automation.{what}", {RESOURCE_ID: automation.resource_id, "prefect.resource.name": automation.name})


def automation_json(a: Automation) -> dict:
    """Prefect's Automation response shape."""
    return {
        "id": str(a.id),
        "created": iso(a.created),
        "updated": iso(a.updated),
        "name": a.name,
        "description": a.description,
        "enabled": a.enabled,
        "tags": a.tags,
        "trigger": a.trigger,
        "actions": [as_prefect(x) for x in a.actions],
        "actions_on_trigger": [as_prefect(x) for x in a.actions_on_trigger],
        "actions_on_resolve": [as_prefect(x) for x in a.actions_on_resolve],
        "owner_resource": a.owner_resource,
        "last_fired": iso(a.last_fired) if a.last_fired else None,
    }


def generation() -> tuple:
    """Changes whenever an automation is created, changed or deleted. Asked before every batch
    the evaluator takes: plain SQL, as the ORM's aggregate costs more than the answer."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT max(updated), count(*) FROM {Automation._meta.db_table}")
        return tuple(cursor.fetchone())


def _trigger_ids(trigger: dict) -> list[str]:
    """Exact or glob resource ids a trigger's match / match_related name."""
    if trigger.get("type", "event") != "event":
        return [rid for child in trigger.get("triggers", []) for rid in _trigger_ids(child)]
    specs = [trigger.get("match") or {}]
    related = trigger.get("match_related") or {}
    specs += related if isinstance(related, list) else [related]
    out = []
    for spec in specs:
        value = spec.get(RESOURCE_ID)
        out += value if isinstance(value, list) else [value] if value else []
    return [v for v in out if not v.startswith("!")]


def related_to(resource_id: str) -> list[Automation]:
    """Automations owned by the resource or whose trigger names it (exactly or by a glob)."""
    out = []
    for a in Automation.objects.order_by("name"):
        if a.owner_resource == resource_id or any(glob_match(p, resource_id) for p in _trigger_ids(a.trigger)):
            out.append(a)
    return out
