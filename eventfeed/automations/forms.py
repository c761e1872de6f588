from __future__ import annotations

import json

from django import forms

from .action_specs import parse_actions
from .triggers import TriggerError, parse_trigger


def _json(value: str):
    try:
        return json.loads(value or "null")
    except json.JSONDecodeError as e:
        raise forms.ValidationError(f"This is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}.")


def _problems(e: TriggerError) -> forms.ValidationError:
    return forms.ValidationError([f"{path}: {rule}" for path, rule in e.problems])


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)
    trigger = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false"}))
    actions = forms.CharField(required=False, initial="[]", widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}))

    def clean_trigger(self) -> dict:
        data = _json(self.cleaned_data["trigger"])
        try:
            return parse_trigger(data, "trigger")[1]
        except TriggerError as e:
            raise _problems(e)

    def clean_actions(self) -> list:
        data = _json(self.cleaned_data.get("actions") or "[]")
        try:
            return parse_actions(data, "actions")
        except TriggerError as e:
            raise _problems(e)

    def fields_for_store(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("name", "description", "enabled", "trigger", "actions")}

    @classmethod
    def initial_for(cls, automation) -> dict:
        return {
            "name": automation.name,
            "description": automation.description,
            "enabled": automation.enabled,
            "trigger": json.dumps(automation.trigger, indent=2),
            "actions": json.dumps(automation.actions, indent=2),
        }
