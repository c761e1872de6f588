"""The feed's query string, validated into the one EventFilter."""

from __future__ import annotations

import uuid
from django import forms

from .filters import TextQuery
from .problems import TimeRuleBroken, as_sentence, read_time
from .wire import iso

DEFAULT_RANGE = "24h"
# The list's optional columns (`?hide=related`): part of a saved view, not of the filter.
HIDEABLE_COLUMNS = ("resource", "related")
RANGE_LABELS = {"15m": "Last 15 minutes", "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days"}


class ListField(forms.Field):
    """A repeatable query parameter (`?event=a&event=b`)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        if not value:
            return []
        values = value if isinstance(value, (list, tuple)) else [value]
        return [v.strip() for v in values if v and v.strip()]

    def validate(self, value):
        super().validate(value)
        # PostgreSQL text cannot hold NUL: the query would fail with a 500 (CharField refuses it too).
        if any("\x00" in v for v in value):
            raise forms.ValidationError("Null characters are not allowed.")


class TimeField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        try:
            return read_time(value)
        except TimeRuleBroken as e:
            raise forms.ValidationError(as_sentence(e.rule)) from None


class CursorField(forms.CharField):
    """`<occurred ISO>~<event id>`: the last row shown; the next page starts after it."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return None
        occurred, _, event_id = value.rpartition("~")
        try:
            return read_time(occurred), uuid.UUID(event_id)
        except ValueError:  # TimeRuleBroken too
            raise forms.ValidationError("This paging cursor is not valid; reload the feed.") from None


def cursor_for(event) -> str:
    return f"{iso(event.occurred)}~{event.id}"


def arrival_cursor_for(event) -> str:
    """`<received>~<event id>`: where a catch-up by arrival goes on from."""
    return f"{iso(event.received)}~{event.id}"


class FeedRules(forms.Form):
    """The rules across the feed's query parameters; the fields are FeedFilterSet's filters."""

    def clean_q(self) -> str:
        query = self.cleaned_data["q"]
        if problem := TextQuery.problem(query):
            raise forms.ValidationError(problem + ".")
        return query

    def clean_hide(self) -> list[str]:
        hide = self.cleaned_data["hide"]
        for column in hide:
            if column not in HIDEABLE_COLUMNS:
                raise forms.ValidationError(f"“{column}” is not a column that can be hidden (use {' or '.join(HIDEABLE_COLUMNS)}).")
        return hide

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range must be after its start.")
        for name in ("resource", "related", "any"):
            for term in data.get(name) or []:
                if "=" in term and not term.split("=", 1)[0].strip().split(":")[-1]:
                    self.add_error(name, f"“{term}” has no label name before “=”.")
        return data


class RetentionOverrideForm(forms.Form):
    """An override on the storage page: events named `pattern` are kept `days` days."""

    pattern = forms.CharField(max_length=1024, strip=True)
    days = forms.IntegerField()

    def clean_pattern(self) -> str:
        from .retention import pattern_problem

        pattern = self.cleaned_data["pattern"]
        if problem := pattern_problem(pattern):
            raise forms.ValidationError(f"The pattern {problem}.")
        return pattern

    def clean_days(self) -> int:
        from .retention import days_problem

        days = self.cleaned_data["days"]
        if problem := days_problem(days):
            raise forms.ValidationError(f"Days {problem}.")
        return days
