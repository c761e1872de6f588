from __future__ import annotations

from django import forms

from . import templates, verification
from .presets import PRESETS


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)
    template = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}))
    verification_kind = forms.ChoiceField(choices=[(k, k) for k in verification.KINDS], initial="none", label="Verification")
    # Write-only: never rendered back into the page; left empty on an edit, the secret stays.
    secret = forms.CharField(required=False, max_length=verification.MAX_SECRET, strip=True,
                             widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    header = forms.CharField(required=False, max_length=100, label="Secret header")

    def __init__(self, *args, current: verification.Verification | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.current = current

    def clean_template(self) -> str:
        source = self.cleaned_data["template"]
        problem = templates.template_problem(source)
        if problem:
            raise forms.ValidationError(f"This {problem}.")
        return source

    def clean(self) -> dict:
        data = super().clean()
        if "verification_kind" in data:
            found, problems = verification.parse(
                {"kind": data["verification_kind"], "secret": data.get("secret") or None,
                 "header": data.get("header") if data["verification_kind"] == "shared-secret-header" else ""},
                self.current,
            )
            for path, rule in problems:
                field = {"verification.secret": "secret", "verification.header": "header"}.get(path, "verification_kind")
                self.add_error(field, f"This {rule}." if field != "verification_kind" else rule)
            data["verification"] = found
        return data

    def fields_for_store(self) -> dict:
        return {k: self.cleaned_data[k] for k in ("name", "description", "enabled", "template", "verification")}

    @classmethod
    def initial_for(cls, webhook=None, preset: str | None = None) -> dict:
        if webhook is not None:
            shown = verification.from_stored(webhook.verification)
            return {"name": webhook.name, "description": webhook.description, "enabled": webhook.enabled,
                    "template": webhook.template, "verification_kind": shown.kind, "header": shown.header}
        chosen = PRESETS.get(preset or "", PRESETS["generic"])
        return {"enabled": True, "template": chosen["template"], "verification_kind": chosen["verification"],
                "header": verification.DEFAULT_SECRET_HEADER if chosen["verification"] == "shared-secret-header" else ""}
