"""The feed's query string, validated into the one EventFilter."""

from __future__ import annotations

import uuid
from datetime import datetime

from django import forms
from django.utils import timezone

from .filters import RANGES, EventFilter, MAX_TEXT_QUERY, TextQuery, parse_event_terms, parse_resource_term
from .problems import TimeRuleBroken, as_sentence, read_time
from .wire import iso

DEFAULT_RANGE = "24h"
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


class FeedForm(forms.Form):
    range = forms.ChoiceField(choices=[(k, v) for k, v in RANGE_LABELS.items()], required=False)
    since = TimeField(required=False)
    until = TimeField(required=False)
    event = ListField(required=False)
    resource = ListField(required=False)
    related = ListField(required=False)
    any = ListField(required=False)
    q = forms.CharField(required=False, max_length=MAX_TEXT_QUERY, strip=True)
    before = CursorField(required=False)
    after = CursorField(required=False)

    def clean_q(self) -> str:
        query = self.cleaned_data["q"]
        if problem := TextQuery.problem(query):
            raise forms.ValidationError(problem + ".")
        return query

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

    def time_bounds(self, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
        """Absolute from/to when given; otherwise the preset, open-ended so live events match."""
        data = self.cleaned_data
        if data.get("since") or data.get("until"):
            return data.get("since"), data.get("until")
        now = now or timezone.now()
        return now - RANGES[data.get("range") or DEFAULT_RANGE], None

    def event_filter(self, now: datetime | None = None) -> EventFilter:
        data = self.cleaned_data
        since, until = self.time_bounds(now)
        conditions = []
        for scope, name in (("resource", "resource"), ("related", "related"), ("any", "any")):
            conditions += [parse_resource_term(term, scope) for term in data.get(name) or []]
        return EventFilter(
            since=since,
            until=until,
            resources=tuple(c for c in conditions if not c.is_empty or c.scope == "related"),
            text=data.get("q") or "",
            order="ASC" if data.get("after") else "DESC",
            **parse_event_terms(data.get("event") or []),
        )


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
