"""Saving the feed's current filter under a name."""

from __future__ import annotations

from django import forms
from django.http import QueryDict

from eventfeed.events.filtersets import FeedFilterSet

from . import store
from .models import MAX_NAME, MAX_QUERY


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=MAX_NAME, strip=True)
    # The feed's query string as the page was drawn (without the leading "?").
    query = forms.CharField(max_length=MAX_QUERY, required=False, strip=True)
    shared = forms.BooleanField(required=False)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if "\x00" in name:
            raise forms.ValidationError("Null characters are not allowed.")
        if store.name_taken(self.owner, name):
            raise forms.ValidationError(f"You already have a view named “{name}”: choose another name, or delete that one first.")
        return name

    def clean_query(self) -> str:
        query = self.cleaned_data["query"].removeprefix("?")
        params = QueryDict(query)
        # A view is opened as a feed URL: it must be one the feed reads.
        feed = FeedFilterSet(params)
        if not feed.is_valid():
            problems = "; ".join(f"{field}: {' '.join(errors)}" for field, errors in feed.errors.items())
            raise forms.ValidationError(f"This is not a filter the feed reads ({problems}).")
        return store.normalized_query(params)
