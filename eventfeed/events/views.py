from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from eventfeed import audit
from eventfeed.dbrouter import primary_reads, reading_replica, reads_from_replica, replica_lag_seconds

from . import export, facets, queries, retention, storage
from .retention import Policy
from .filter_parsers import RANGES
from .filtersets import FeedFilterSet
from .forms import DEFAULT_RANGE, RANGE_LABELS, RetentionOverrideForm, arrival_cursor_for, cursor_for
from .models import ApiKey, IngestProblem, RetentionOverride
from .templatetags.eventfeed import event_tone
from .wire import iso, wire

PAGE_SIZE = 50
HISTOGRAM_MAX_SPAN = timedelta(days=3660)
# The event page shows how late an event arrived only past this many seconds.
DELAY_WORTH_SHOWING = 5


@require_GET
@login_required
@reads_from_replica(unless=lambda request: bool(request.GET.get("after") or request.GET.get("arrived")))
def feed(request: HttpRequest) -> HttpResponse:
    """The feed page; with `?partial=rows` only the rows (load older, catch-up after reconnect)."""
    form = FeedFilterSet(request.GET)
    partial = request.GET.get("partial") == "rows"
    if not form.is_valid():
        if partial:
            return JsonResponse({"errors": form.errors}, status=400)
        ctx = {"form": form.form, "events": [], "range_labels": RANGE_LABELS}
        return render(request, "events/feed.html", ctx, status=400)

    f = form.event_filter()
    after = form.cleaned_data.get("after")
    arrived = form.cleaned_data.get("arrived")
    if arrived:
        # Catch-up after a reconnect: by arrival, so that an event claiming a far-future (or
        # far-past) time cannot hide the others that arrived meanwhile.
        events, more = queries.arrived_after(f, arrived, PAGE_SIZE)
        arrived_cursor = arrival_cursor_for(events[-1]) if events else ""
    else:
        events, more = f.page(limit=PAGE_SIZE, after=form.cleaned_data.get("before") or after)
    if after:
        # Catch-up after a reconnect comes oldest first; the page wants newest first.
        events.reverse()
    ctx = {
        "form": form.form,
        "filter": f,
        "events": events,
        "more": more,
        "next_cursor": cursor_for(events[-1]) if events and (more and not after and not arrived) else "",
        # Catching up after a reconnect: where the next page of newer events starts.
        "after_cursor": cursor_for(events[0]) if events and more and after else "",
        # By arrival: the last event of this page, and whether another page follows it.
        "arrived_cursor": arrived_cursor if arrived else "",
        "arrived_more": bool(arrived) and more,
        "range_labels": RANGE_LABELS,
        "now": timezone.now(),
    }
    if partial:
        return render(request, "events/_rows.html", ctx)
    return render(request, "events/feed.html", ctx)


@require_GET
@login_required
@reads_from_replica
def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    """One event, its resources, payload and causal neighbours; `?format=json` downloads it."""
    try:
        pk = uuid.UUID(event_id)
    except ValueError:
        pk = None
    event = queries.event_for_page(pk) if pk else None
    if event is None and pk and reading_replica():
        # A row pushed live links here before the replica has the event: the primary has it.
        with primary_reads():
            event = queries.event_for_page(pk)
            if event is not None:
                return _event_page(request, event)
    if event is None:
        ctx = {"missing_event": event_id, "malformed": pk is None}
        return render(request, "404.html", ctx, status=404)
    return _event_page(request, event)


def _event_page(request: HttpRequest, event) -> HttpResponse:
    if request.GET.get("format") == "json":
        response = JsonResponse(wire(event), json_dumps_params={"indent": 2, "ensure_ascii": False})
        response["Content-Disposition"] = f'attachment; filename="event-{event.id}.json"'
        return response
    following, more_following = queries.following_events(event)
    delay = (event.received - event.occurred).total_seconds()
    ctx = {
        "event": event,
        "event_json": wire(event),
        "page_url": request.build_absolute_uri(request.path),
        # Producers batch and clocks drift: a few seconds between occurred and received is noise.
        "delay": delay if abs(delay) > DELAY_WORTH_SHOWING else None,
        "followed": queries.followed_event(event),
        "following": following,
        "more_following": more_following,
        "around": queries.events_around(event),
    }
    return render(request, "events/detail.html", ctx)


@login_required
def api_keys(request: HttpRequest) -> HttpResponse:
    """List, create and revoke API keys. A new key is shown once, on the page that created it."""
    new_key = None
    if request.method == "POST":
        name = (request.POST.get("name") or "").strip()
        if not name:
            messages.error(request, "Give the key a name, such as the system that will use it.")
        elif len(name) > 100:
            messages.error(request, "Key names are at most 100 characters.")
        else:
            with transaction.atomic():
                key, new_key = ApiKey.create(name, created_by=request.user)
                audit.record("api-key.created", audit.key_resource(key), {"name": key.name})
    keys = ApiKey.objects.all()
    return render(request, "events/api_keys.html", {"keys": keys, "new_key": new_key})


@require_POST
@login_required
def revoke_api_key(request: HttpRequest, key_id: int) -> HttpResponse:
    key = get_object_or_404(ApiKey, pk=key_id)
    if key.revoked is None:
        with transaction.atomic():
            key.revoked = timezone.now()
            key.save(update_fields=["revoked"])
            audit.record("api-key.revoked", audit.key_resource(key), {"name": key.name})
        messages.success(request, f"Revoked “{key.name}”. Producers using it now get 403.")
    return redirect("api-keys")


@require_GET
@login_required
def ingest_problems(request: HttpRequest) -> HttpResponse:
    from eventfeed.follow.models import FollowedServer

    problems = IngestProblem.objects.select_related("api_key")[:200]
    return render(request, "events/problems.html", {"problems": problems, "followed": FollowedServer.objects.all()})


def _bounded_filter(form: FeedFilterSet):
    """The form's filter with both ends of its time range set, as histograms need; a preset
    or a missing `until` ends now, a missing `since` starts the default range before `until`."""
    now = timezone.now()
    f = form.event_filter(now)
    until = f.until or now
    since = f.since or until - RANGES[DEFAULT_RANGE]
    # Buckets align to a fixed pivot: an unbounded span (year 2 to now) would start a bucket
    # before year 1. Ten years of bars are as much as a chart can say.
    since = max(since, until - HISTOGRAM_MAX_SPAN)
    return replace(f, since=since, until=until, order="DESC")


@require_GET
@login_required
@reads_from_replica
def feed_names(request: HttpRequest) -> JsonResponse:
    """Stored event names with their counts under the feed's filter minus its event-name part,
    grouped by namespace: the event-name picker."""
    form = FeedFilterSet(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    # Bounded like the histogram, so that a preset range reads the event counts, not the events.
    f = replace(_bounded_filter(form), names=(), prefixes=(), exclude_names=(), exclude_prefixes=())
    return JsonResponse({"groups": queries.event_names_by_namespace(f)})


@require_GET
@login_required
@reads_from_replica
def feed_histogram(request: HttpRequest) -> JsonResponse:
    """Event counts over the feed's time range, filtered like the list, in readable buckets."""
    form = FeedFilterSet(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    f = _bounded_filter(form)
    seconds, buckets, estimated = queries.histogram(f)
    return JsonResponse({
        "since": iso(f.since),
        "until": iso(f.until),
        "bucket_seconds": seconds,
        # Every event of the range under the filter is in one bucket: the total is exact unless
        # the buckets were estimated from a sample (a filter the counts cannot serve, with many
        # matches).
        "total": sum(b.count for b in buckets),
        "estimated": estimated,
        "buckets": [
            {"start": iso(b.start), "end": iso(b.end), "count": b.count, "severity": severity_counts(b.names)}
            for b in buckets
        ],
    })


@require_GET
@login_required
@reads_from_replica
def feed_facets(request: HttpRequest) -> HttpResponse:
    """The facets beside the feed (a partial the page loads after its first paint): what the
    events of the filter and range are made of, with counts, each value to include or exclude."""
    form = FeedFilterSet(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    return render(request, "events/_facets.html", {"result": facets.facets(_bounded_filter(form))})


def severity_counts(names) -> dict[str, int]:
    """A bucket's events as the histogram stacks them: failures, warnings, the rest."""
    out = {"bad": 0, "warn": 0, "other": 0}
    for name, n in (names or {}).items():
        tone = event_tone(name)
        out[tone if tone in ("bad", "warn") else "other"] += n
    return out


@require_GET
@login_required
@reads_from_replica
def feed_export(request: HttpRequest) -> HttpResponse:
    """The feed's filter as a download (the Export link): `format=ndjson` (default) or `csv`."""
    fmt = request.GET.get("format", "ndjson")
    if fmt not in export.FORMATS:
        return JsonResponse({"errors": {"format": ["Use ndjson or csv."]}}, status=400)
    form = FeedFilterSet(request.GET)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors}, status=400)
    return export.response(request, replace(form.event_filter(), order="DESC"), fmt)


@login_required
def storage_page(request: HttpRequest) -> HttpResponse:
    """Where the space goes (by day, by name, the last day's biggest producers), the retention
    in force, and what it removes next; a POST adds or changes a retention override."""
    form = RetentionOverrideForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        retention.save_override(form.cleaned_data["pattern"], form.cleaned_data["days"], request.user)
        messages.success(request, f"Events named {form.cleaned_data['pattern']} are now kept {form.cleaned_data['days']} days.")
        return redirect("storage")
    now = timezone.now()
    policy = Policy.current()
    days = storage.by_day(policy)
    names = storage.by_name(policy)
    ctx = {
        "form": form,
        "policy": policy,
        "page_overrides": {o.pattern: o for o in RetentionOverride.objects.all()},
        "totals": storage.totals(),
        "days": days,
        "names": names,
        "prefixes": storage.by_prefix(names),
        "removals": storage.next_removals(policy, days, now),
        "last_day_names": storage.by_name(policy, since=now - timedelta(days=1))[:10],
        "last_day_resources": storage.top_resources_last_day(now),
        "now": now,
        "replica_lag": replica_lag_seconds(),
    }
    return render(request, "events/storage.html", ctx, status=400 if form.errors else 200)


@require_POST
@login_required
def delete_retention_override(request: HttpRequest, override_id: int) -> HttpResponse:
    override = get_object_or_404(RetentionOverride, pk=override_id)
    retention.delete_override(override)
    messages.success(request, f"Removed the override for {override.pattern}; the default applies again.")
    return redirect("storage")
