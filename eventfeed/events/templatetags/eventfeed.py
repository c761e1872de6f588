"""Display helpers shared by the feed rows, the event page and the live push."""

from __future__ import annotations

import threading
from collections import OrderedDict
from urllib.parse import urlencode

from django import template
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from ..schema import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from ..wire import iso as wire_iso

register = template.Library()

SYSTEM_NAMESPACES = ("prefect", "prefect-cloud")


def _words(segment: str) -> str:
    return segment.replace("-", " ").replace("_", " ")


@register.filter
def iso(moment) -> str:
    """A time as the wire writes it (UTC, `Z`): what the page's scripts parse and sort by."""
    return wire_iso(moment) if moment else ""


@register.filter
def readable_name(name: str) -> str:
    """prefect.flow-run.Completed → "Flow run · Completed"; acme.order.shipped → "Acme order · Shipped"."""
    parts = [p for p in name.split(".") if p]
    if len(parts) > 1 and parts[0] in SYSTEM_NAMESPACES:
        parts = parts[1:]
    if len(parts) < 2:
        return _words(name)
    subject = " ".join(_words(p) for p in parts[:-1])
    action = _words(parts[-1])
    return f"{subject[:1].upper()}{subject[1:]} · {action[:1].upper()}{action[1:]}"


@register.filter
def resource_label(labels: dict) -> str:
    """A resource's display name: its name label, else a tag's tag, else its id."""
    if labels.get(RESOURCE_NAME):
        return labels[RESOURCE_NAME]
    rid = labels.get(RESOURCE_ID, "")
    if labels.get(RESOURCE_ROLE) == "tag" and rid.startswith("prefect.tag."):
        return rid.removeprefix("prefect.tag.")
    return rid


@register.filter
def related_by_role(related: list[dict]) -> list[tuple[str, list[dict]]]:
    """Related resources grouped by role, tags last, in first-seen order otherwise."""
    groups: dict[str, list[dict]] = {}
    for resource in related or []:
        groups.setdefault(resource.get(RESOURCE_ROLE, ""), []).append(resource)
    return sorted(groups.items(), key=lambda item: item[0] == "tag")


@register.simple_tag
def feed_url(**params) -> str:
    """The feed URL with the given filter parameters (empty ones left out)."""
    query = urlencode({k: v for k, v in params.items() if v}, doseq=True)
    return reverse("feed") + (f"?{query}" if query else "")


@register.filter
def resource_filter(resource: dict) -> str:
    """The feed URL that shows every event touching this resource."""
    return feed_url(any=resource.get(RESOURCE_ID, ""))


@register.filter
def label(labels: dict, key: str) -> str:
    """A label by name: template lookups cannot reach keys with dots."""
    return (labels or {}).get(key, "")


# -- the feed page's URLs, pills and empty state ------------------------------------------------

# Query parameters that describe where the reader is, not what they filter on: a new filter
# starts again at the newest page.
PAGING_PARAMS = ("before", "after", "partial")
FILTER_PARAMS = ("event", "resource", "related", "any", "q")
PARAM_LABELS = {
    "range": "Time range",
    "since": "From",
    "until": "To",
    "event": "Event",
    "resource": "Resource",
    "related": "Related",
    "any": "Any resource",
    "q": "Text",
    "hide": "Hidden columns",
    "before": "Paging cursor",
    "after": "Paging cursor",
}
WIDER_RANGES = ("1h", "24h", "7d", "30d")


def _feed_query(query, *, drop: tuple[str, ...] = (), remove: tuple[str, str] | None = None, **set_params) -> str:
    """The feed URL from a QueryDict, without paging, the `drop`ped keys and one (key, value)
    `remove`d, with `set_params` replacing their keys."""
    out = query.copy()
    for key in (*PAGING_PARAMS, *drop, *set_params):
        out.pop(key, None)
    if remove is not None:
        key, value = remove
        kept = [v for v in query.getlist(key) if v != value]
        out.setlist(key, kept)
    for key, value in set_params.items():
        if value:
            out[key] = value
    encoded = out.urlencode()
    return reverse("feed") + (f"?{encoded}" if encoded else "")


@register.simple_tag
def feed_with(query, **params) -> str:
    """The feed URL for this query with some parameters replaced: `{% feed_with request.GET range='7d' %}`.
    A time preset replaces an absolute range; paging starts over unless a cursor is given."""
    drop = ("since", "until") if "range" in params else ()
    if "since" in params or "until" in params:
        drop = ("range",)
    url = _feed_query(query, drop=drop, **{k: v for k, v in params.items() if k not in PAGING_PARAMS})
    cursor = {k: v for k, v in params.items() if k in PAGING_PARAMS and v}
    if cursor:
        url += ("&" if "?" in url else "?") + urlencode(cursor)
    return url


@register.filter
def param_label(name: str) -> str:
    return PARAM_LABELS.get(name, name)


@register.simple_tag
def active_filters(query) -> list[dict]:
    """One removable pill per filter value in the query string, in reading order."""
    pills = []
    for key in ("since", "until"):
        value = query.get(key, "").strip()
        if value:
            pills.append({"key": key, "label": PARAM_LABELS[key], "value": value, "time": True,
                          "remove": _feed_query(query, drop=(key,))})
    for key in FILTER_PARAMS:
        for value in query.getlist(key):
            if not value.strip():
                continue
            label = PARAM_LABELS[key]
            shown = value.strip()
            negated = False
            if key != "q" and shown.startswith("!") and len(shown) > 1:
                negated, shown = True, shown[1:]
            pills.append({"key": key, "label": label, "value": shown, "negated": negated,
                          "remove": _feed_query(query, remove=(key, value))})
    return pills


@register.simple_tag
def facet_link(query, key: str, term: str, only: bool = False) -> dict:
    """A facet value's include or exclude link: the feed with `term` added to `key` (and its
    opposite, `!term` or `term`, taken away; with `only`, every other positive term of `key`
    too), or without it when it is already there."""
    opposite = term[1:] if term.startswith("!") else f"!{term}"
    values = query.getlist(key)
    on = term in values
    kept = [v for v in values if v not in (term, opposite) and not (only and not v.startswith("!"))]
    out = query.copy()
    out.setlist(key, kept + ([] if on else [term]))
    return {"url": _feed_query(out), "on": on}


@register.filter
def count(n: int) -> str:
    """An exact count: 1,234."""
    return f"{n:,}"


@register.filter
def approx(n: int) -> str:
    """An estimated count, to two significant figures: 980, 1.2k, 45k, 1.2M."""
    if n < 1000:
        return f"{round(n, -1) if n >= 100 else n:,}"
    for size, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            return (f"{value:.1f}".removesuffix(".0") if value < 10 else f"{round(value):,}") + unit
    return str(n)


@register.simple_tag
def wider_ranges(query) -> list[tuple[str, str]]:
    """Presets wider than the one in force, as (label key, URL), for the empty state."""
    if query.get("since") or query.get("until"):
        return [(key, _feed_query(query, drop=("since", "until"), range=key)) for key in ("24h", "7d", "30d")]
    current = query.get("range") or "24h"
    wider = WIDER_RANGES[WIDER_RANGES.index(current) + 1:] if current in WIDER_RANGES else WIDER_RANGES
    return [(key, _feed_query(query, range=key)) for key in wider]


@register.filter
def ago(value) -> str:
    """A compact relative time ("12 s ago"); the page's script keeps it current."""
    seconds = int((timezone.now() - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


# -- feed rows --------------------------------------------------------------------------------------

ROW_CACHE_SIZE = 5_000
AGO_MARK = "\x00ago\x00"
_rows: OrderedDict = OrderedDict()
# Page views (Django's sync thread) and the live push (worker threads) share the cache.
_rows_lock = threading.Lock()


def row_html(event) -> str:
    """The feed row of an event (events/_row.html), rendered once per process: an event never
    changes, and every page view and the live push show the same rows. Only the relative time
    is filled in per use."""
    with _rows_lock:
        html = _rows.get(event.id)
        if html is not None:
            _rows.move_to_end(event.id)
    if html is None:
        html = render_to_string("events/_row.html", {"event": event, "ago": AGO_MARK})
        with _rows_lock:
            _rows[event.id] = html
            if len(_rows) > ROW_CACHE_SIZE:
                _rows.popitem(last=False)
    return html.replace(AGO_MARK, ago(event.occurred))


@register.simple_tag
def feed_row(event) -> str:
    return mark_safe(row_html(event))


# -- the event page ------------------------------------------------------------------------------


@register.filter
def duration(seconds: float) -> str:
    """A length of time as a person says it: 4.2 s, 3 min 12 s, 2 h 5 min, 3 d 4 h."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    whole = int(seconds)
    for size, unit, smaller, sub in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"), (60, "min", 1, "s")):
        if whole >= size:
            rest = whole % size // smaller
            return f"{whole // size} {unit}" + (f" {rest} {sub}" if rest else "")
    return f"{whole} s"


@register.filter
def label_rows(labels: dict, which: str = "all") -> list[tuple[str, str]]:
    """A resource's labels as (key, value) pairs; `"extra"` leaves out its id, role and name,
    which the page shows on their own. Templates cannot use `labels.items`: a label named
    "items" would win."""
    skip = (RESOURCE_ID, RESOURCE_ROLE, RESOURCE_NAME) if which == "extra" else ()
    return [(k, v) for k, v in (labels or {}).items() if k not in skip]


@register.simple_tag
def feed_without(query, *keys: str) -> str:
    """The feed URL for this query without the given parameters (all their values)."""
    return _feed_query(query, drop=keys)


@register.simple_tag
def filter_query(query) -> str:
    """The query string without paging: what the names and histogram endpoints are asked."""
    return _feed_query(query).partition("?")[2]


@register.simple_tag
def current_range(query) -> str:
    """The preset in force, or "custom" for an absolute from/to."""
    if query.get("since") or query.get("until"):
        return "custom"
    return query.get("range") or "24h"


TONES = {
    "bad": ("failed", "crashed", "error", "errored", "evicted", "failure"),
    "good": ("completed", "succeeded", "success", "executed", "resolved"),
    "warn": ("cancelled", "cancelling", "paused", "late", "pending", "retrying", "awaitingretry", "unknown"),
    "live": ("running", "started", "submitted", "triggered", "heartbeat"),
}


@register.filter
def event_tone(name: str) -> str:
    """A colour family for the event's last segment, so failures stand out at a glance."""
    last = name.rpartition(".")[2].lower().replace("-", "").replace("_", "")
    for tone, words in TONES.items():
        if last in words:
            return tone
    return "neutral"


@register.filter
def get_item(mapping: dict, key: str):
    return (mapping or {}).get(key, "")
