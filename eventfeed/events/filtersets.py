"""The feed's query string, read by django-filter into the one EventFilter.

The feed page, its rows ("load older", catch-up), the names picker, the histogram, the export and
the live feed socket's subscribe message all take the same parameters. FeedFilterSet validates
them (its form's errors are the page's form errors, or a 400 naming the field) and builds the
EventFilter that the database, the live push and the property test share; it does not filter
field by field, because a resource term, a related term and a label condition combine into one
condition of the filter, not into chained querysets.
"""

from __future__ import annotations

from datetime import datetime

import django_filters
from django.utils import timezone

from .filter_parsers import RANGES, parse_event_terms, parse_resource_term
from .filters import MAX_TEXT_QUERY, EventFilter
from .forms import DEFAULT_RANGE, RANGE_LABELS, CursorField, FeedRules, ListField, TimeField
from .models import Event


class TimeFilter(django_filters.Filter):
    field_class = TimeField


class TermsFilter(django_filters.Filter):
    """A repeatable parameter (`?event=a&event=b`)."""

    field_class = ListField


class CursorFilter(django_filters.Filter):
    field_class = CursorField


class FeedFilterSet(django_filters.FilterSet):
    range = django_filters.ChoiceFilter(choices=list(RANGE_LABELS.items()))
    since = TimeFilter()
    until = TimeFilter()
    event = TermsFilter()
    resource = TermsFilter()
    related = TermsFilter()
    any = TermsFilter()
    q = django_filters.CharFilter(max_length=MAX_TEXT_QUERY, strip=True)
    # Columns the list hides: how the feed is shown, not what it matches (forms.HIDEABLE_COLUMNS).
    hide = TermsFilter()
    before = CursorFilter()
    after = CursorFilter()
    # `<received>~<event id>`: the live feed's catch-up, by arrival (queries.arrived_after).
    arrived = CursorFilter()

    class Meta:
        model = Event
        fields: list[str] = []
        form = FeedRules

    def __init__(self, data=None, *args, **kwargs):
        super().__init__(data if data is not None else {}, *args, **kwargs)

    @property
    def cleaned_data(self) -> dict:
        return self.form.cleaned_data

    def filter_queryset(self, queryset):
        return self.event_filter().queryset()

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
        for scope in ("resource", "related", "any"):
            conditions += [parse_resource_term(term, scope) for term in data.get(scope) or []]
        return EventFilter(
            since=since,
            until=until,
            resources=tuple(c for c in conditions if not c.is_empty or c.scope == "related" or c.negate),
            text=data.get("q") or "",
            order="ASC" if data.get("after") else "DESC",
            **parse_event_terms(data.get("event") or []),
        )
