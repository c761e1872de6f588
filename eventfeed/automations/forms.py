from __future__ import annotations

import json

from django import forms

from eventfeed.events.filter_parsers import from_json
from eventfeed.events.filters import FilterError

from . import debugging
from .action_specs import parse_actions
from .masking import keep_secrets, mask_secrets
from .triggers import TriggerError, parse_trigger


def _json(value: str):
    try:
        return json.loads(value or "null")
    except json.JSONDecodeError as e:
        raise forms.ValidationError(f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)
    trigger = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}))
    actions = forms.CharField(required=False, initial="[]", widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))

    def __init__(self, *args, automation=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The saved automation, whose webhook header secrets a masked value keeps.
        self.automation = automation
        # (JSON path, rule) per problem, for the editor to show each at its field.
        self.problems: dict[str, list[dict]] = {"trigger": [], "actions": []}

    def _problems(self, field: str, problems: list[tuple[str, str]]) -> forms.ValidationError:
        self.problems[field] += [{"path": path, "rule": rule} for path, rule in problems]
        return forms.ValidationError([f"{path}: {rule}" for path, rule in problems])

    def _json(self, field: str):
        try:
            return _json(self.cleaned_data.get(field) or ("[]" if field == "actions" else ""))
        except forms.ValidationError as e:
            # The JSON itself does not read: the editor opens its JSON tab on this message.
            self.problems[field].append({"path": field, "rule": e.messages[0], "json": True})
            raise

    def clean_trigger(self) -> dict:
        data = self._json("trigger")
        try:
            return parse_trigger(data, "trigger")[1]
        except TriggerError as e:
            raise self._problems("trigger", e.problems)

    def clean_actions(self) -> list:
        data, masked = keep_secrets(self._json("actions"), self.automation.actions if self.automation else None)
        problems = list(masked)
        try:
            actions = parse_actions(data, "actions")
        except TriggerError as e:
            problems += e.problems
        if problems:
            raise self._problems("actions", problems)
        return actions

    def fields_for_store(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("name", "description", "enabled", "trigger", "actions")}

    @classmethod
    def initial_for(cls, automation) -> dict:
        return {
            "name": automation.name,
            "description": automation.description,
            "enabled": automation.enabled,
            "trigger": json.dumps(automation.trigger, indent=2),
            "actions": json.dumps(mask_secrets(automation.actions), indent=2, ensure_ascii=False),
        }


class TestEventForm(forms.Form):
    event_id = forms.CharField(required=False, max_length=64, label="A stored event's id")
    event_json = forms.CharField(required=False, label="or an event (JSON)",
                                 widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))

    def clean(self):
        data = super().clean()
        event_id, text = (data.get("event_id") or "").strip(), (data.get("event_json") or "").strip()
        if not event_id and not text:
            raise forms.ValidationError("Give a stored event's id or paste an event's JSON.")
        if event_id:
            event = debugging.stored_test_event(event_id)
            if event is None:
                self.add_error("event_id", "No stored event has this id.")
                return data
        else:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as e:
                self.add_error("event_json", f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
                return data
            try:
                event = debugging.parse_test_event(raw)
            except TriggerError as e:
                self.add_error("event_json", [f"{path}: {rule}" for path, rule in e.problems])
                return data
        data["event"] = event
        return data


class ReplayForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, label="To (UTC)", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    filter_json = forms.CharField(required=False, label="Filter (EventFilter JSON, optional)",
                                  widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
    run_actions = forms.BooleanField(required=False, label="Run the actions (record the firings, marked replayed)")

    def clean(self):
        data = super().clean()
        text = (data.get("filter_json") or "").strip()
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError as e:
            self.add_error("filter_json", f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")
            return data
        occurred = dict(raw.get("occurred") or {}) if isinstance(raw, dict) else {}
        for key in ("since", "until"):
            if data.get(key):
                occurred[key] = data[key].isoformat()
        if isinstance(raw, dict) and occurred:
            raw = {**raw, "occurred": occurred}
        try:
            data["filter"] = from_json(raw, "filter")
        except FilterError as e:
            self.add_error("filter_json", [f"{path}: {rule}" for path, rule in e.problems])
        return data
