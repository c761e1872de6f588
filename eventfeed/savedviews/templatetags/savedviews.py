"""The saved-views part of the feed's bar: `{% saved_views request as bar %}`."""

from __future__ import annotations

from django import template
from django.urls import reverse

from eventfeed.events.forms import HIDEABLE_COLUMNS

from .. import store

register = template.Library()


@register.simple_tag
def saved_views(request) -> dict:
    """The views the user may open, the one this feed is (same query), their home, this feed's
    query as a view would keep it, and where the bar's buttons come back to."""
    query = store.normalized_query(request.GET)
    views = list(store.visible_to(request.user))
    return {
        "views": views,
        "current": next((v for v in views if v.query == query), None),
        "home": store.home_for(request.user),
        "query": query,
        "next": request.get_full_path(),
    }


@register.simple_tag
def column_toggles(query) -> list[dict]:
    """One link per column the list can hide: the feed with that column shown or hidden."""
    hidden = query.getlist("hide")
    out = []
    for column in HIDEABLE_COLUMNS:
        params = query.copy()
        for key in ("before", "after", "partial"):
            params.pop(key, None)
        shown = column not in hidden
        params.setlist("hide", [c for c in hidden if c != column] + ([column] if shown else []))
        encoded = params.urlencode()
        out.append({"column": column, "shown": shown, "url": reverse("feed") + (f"?{encoded}" if encoded else "")})
    return out
