"""The feed page, its rows partial, and the names and histogram endpoints beside it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, quote, urlparse

import pytest

from eventfeed.events.queries import histogram_bucket_seconds
from eventfeed.events.views import PAGE_SIZE

from .conftest import make_event, store

pytestmark = pytest.mark.django_db

FLOW = {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow", "prefect.resource.name": "etl-orders"}
POOL = {"prefect.resource.id": "prefect.work-pool.k8s", "prefect.resource.role": "work-pool", "prefect.resource.name": "k8s-prod"}
TAG = {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}


def row_ids(response) -> list[str]:
    return re.findall(r'<li class="row" data-id="([0-9a-f-]+)"', response.content.decode())


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url.replace("&amp;", "&")).query)


@pytest.fixture
def flow_runs(minutes_ago):
    """Three events, newest first: a failed flow run, a completed one, a worker event."""
    failed = make_event("prefect.flow-run.Failed", "prefect.flow-run.aaa", occurred=minutes_ago(1),
                        related=[FLOW, POOL, TAG], payload={"message": "KeyError customer_id"},
                        **{"prefect.resource.name": "amber-falcon", "prefect.state-type": "FAILED"})
    completed = make_event("prefect.flow-run.Completed", "prefect.flow-run.bbb", occurred=minutes_ago(2),
                           related=[FLOW, TAG], **{"prefect.resource.name": "quiet-otter"})
    worker = make_event("prefect.worker.started", "prefect.worker.kubernetes.w1", occurred=minutes_ago(3),
                        related=[POOL], **{"prefect.worker-type": "kubernetes"})
    store(failed, completed, worker)
    return [failed["id"], completed["id"], worker["id"]]


# -- who may see it ---------------------------------------------------------------------------------

def test_it_redirects_anonymous_visitors_to_the_login_page(client):
    for url in ("/events/", "/events/names", "/events/histogram", "/events/?partial=rows"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_it_shows_the_feed_to_a_signed_in_user(owner_client, flow_runs):
    response = owner_client.get("/events/")
    assert response.status_code == 200
    assert b'<script type="module" src="/static/js/feed.js">' in response.content
    assert row_ids(response) == flow_runs


def test_it_leads_from_the_site_root_to_the_feed(owner_client):
    assert owner_client.get("/")["Location"] == "/events/"


# -- rows -------------------------------------------------------------------------------------------

def test_it_renders_each_row_with_time_names_resource_and_chips(owner_client, flow_runs):
    html = owner_client.get("/events/").content.decode()
    row = html[html.index(f'data-id="{flow_runs[0]}"'):]
    row = row[: row.index("</li>")]
    assert 'data-occurred="' in row
    assert re.search(r'<time class="when" datetime="[^"]+" title="[^"]+ UTC"><span class="rel">1 min ago</span>', row)
    assert f'href="/events/{flow_runs[0]}/"' in row
    assert "Flow run · Failed" in row and "<code class=\"raw\">prefect.flow-run.Failed</code>" in row
    assert 'data-tone="bad"' in row
    # The primary resource by its name, linking to the feed filtered to it.
    assert 'href="/events/?resource=prefect.flow-run.aaa"' in row and ">amber-falcon</a>" in row
    # Related resources as chips grouped by role, the tag as a tag, each filtering the feed.
    assert '<span class="group" data-role="flow"><span class="role">flow</span>' in row
    assert 'class="chip" href="/events/?any=prefect.flow.f1"' in row and ">etl-orders</a>" in row
    assert 'class="chip tag" href="/events/?any=prefect.tag.prod"' in row and ">prod</a>" in row
    assert row.index('data-role="work-pool"') < row.index('data-role="tag"')


def test_it_shows_the_resource_id_when_the_resource_has_no_name(owner_client, flow_runs):
    html = owner_client.get("/events/").content.decode()
    assert ">prefect.worker.kubernetes.w1</a>" in html


def test_it_links_chips_to_a_feed_that_shows_that_resource(owner_client, flow_runs, minutes_ago):
    store(make_event("acme.order.shipped", "acme.order.1", occurred=minutes_ago(4)))
    html = owner_client.get("/events/").content.decode()
    chip_url = re.search(r'class="chip" href="([^"]+)"[^>]*>etl-orders<', html).group(1)
    assert row_ids(owner_client.get(chip_url)) == flow_runs[:2]


# -- filters through the query string ---------------------------------------------------------------

@pytest.mark.parametrize(
    "query, expected",
    [
        ("event=prefect.flow-run.*", [0, 1]),
        ("event=prefect.flow-run.Completed", [1]),
        ("event=!prefect.flow-run.*", [2]),
        ("event=!prefect.flow-run.Failed", [1, 2]),
        # A prefix and an exact name of another family show both.
        ("event=prefect.flow-run.Failed&event=prefect.worker.*", [0, 2]),
        ("resource=prefect.flow-run.bbb", [1]),
        ("resource=prefect.flow-run.*", [0, 1]),
        ("resource=prefect.state-type=FAIL*", [0]),
        ("resource=prefect.resource.name=!amber-*", [1]),  # the label must be present
        ("related=prefect.flow.f1", [0, 1]),
        ("related=work-pool:prefect.work-pool.k8s", [0, 2]),
        ("related=flow:prefect.work-pool.k8s", []),
        ("related=tag:*", [0, 1]),
        ("any=prefect.work-pool.*", [0, 2]),
        ("any=prefect.worker-type=kubernetes", [2]),
        ("q=customer_id", [0]),
        ("q=quiet-otter", [1]),
        ("q=-prefect.flow-run", [2]),
        ("event=prefect.flow-run.*&related=tag:prefect.tag.prod&q=keyerror", [0]),
    ],
)
def test_it_filters_by_each_kind_of_condition(owner_client, flow_runs, query, expected):
    response = owner_client.get(f"/events/?{query}")
    assert response.status_code == 200
    assert row_ids(response) == [flow_runs[i] for i in expected]


def test_it_filters_by_time_preset_and_absolute_range(owner_client, now):
    old = make_event(occurred=now - timedelta(hours=3))
    recent = make_event(occurred=now - timedelta(minutes=5))
    ancient = make_event(occurred=now - timedelta(days=3))
    store(old, recent, ancient)
    assert row_ids(owner_client.get("/events/?range=15m")) == [recent["id"]]
    assert row_ids(owner_client.get("/events/?range=1h")) == [recent["id"]]
    assert row_ids(owner_client.get("/events/")) == [recent["id"], old["id"]]  # 24 h by default
    assert row_ids(owner_client.get("/events/?range=7d")) == [recent["id"], old["id"], ancient["id"]]
    since = quote((now - timedelta(hours=4)).isoformat())
    until = quote((now - timedelta(hours=2)).isoformat())
    assert row_ids(owner_client.get(f"/events/?since={since}&until={until}")) == [old["id"]]
    # Absolute bounds win over a preset.
    assert row_ids(owner_client.get(f"/events/?range=15m&since={since}&until={until}")) == [old["id"]]


def test_it_shows_each_active_filter_as_a_removable_pill(owner_client, flow_runs):
    html = owner_client.get("/events/?range=1h&event=prefect.flow-run.*&event=!prefect.flow-run.Failed&related=flow:prefect.flow.f1&q=etl").content.decode()
    pills = re.findall(r'<li class="pill pill-(\w+)( negated)?">.*?<span class="v">(.*?)</span><a class="x" href="([^"]+)"', html)
    assert [(key, value) for key, _, value, _ in pills] == [
        ("event", "prefect.flow-run.*"), ("event", "prefect.flow-run.Failed"), ("related", "flow:prefect.flow.f1"), ("q", "etl"),
    ]
    assert pills[1][1] == " negated"
    # Removing one pill keeps every other filter and the range.
    assert query_of(pills[1][3]) == {"range": ["1h"], "event": ["prefect.flow-run.*"], "related": ["flow:prefect.flow.f1"], "q": ["etl"]}
    assert query_of(pills[3][3]) == {"range": ["1h"], "event": ["prefect.flow-run.*", "!prefect.flow-run.Failed"], "related": ["flow:prefect.flow.f1"]}


def test_it_keeps_the_filters_in_the_time_preset_links_and_the_search_form(owner_client, flow_runs):
    html = owner_client.get("/events/?since=2026-01-01T00:00:00Z&event=prefect.flow-run.*&any=prefect.tag.prod").content.decode()
    preset = re.search(r'<a href="([^"]+)" class="seg" title="Last 7 days"', html).group(1)
    assert query_of(preset) == {"event": ["prefect.flow-run.*"], "any": ["prefect.tag.prod"], "range": ["7d"]}
    form = html[html.index('id="feed-filters"'):]
    form = form[: form.index("</form>")]
    assert '<input type="hidden" name="since" value="2026-01-01T00:00:00Z">' in form
    assert '<input type="hidden" name="event" value="prefect.flow-run.*">' in form
    assert '<input type="hidden" name="any" value="prefect.tag.prod">' in form
    assert 'name="range"' not in form


# -- load older -------------------------------------------------------------------------------------

def test_it_pages_older_events_with_a_keyset_cursor(owner_client, now):
    events = [make_event(occurred=now - timedelta(seconds=i)) for i in range(PAGE_SIZE + 7)]
    store(*events)
    first = owner_client.get("/events/?event=acme.order.shipped")
    html = first.content.decode()
    assert row_ids(first) == [e["id"] for e in events[:PAGE_SIZE]]
    assert f"{PAGE_SIZE}+ events" in html
    older = re.search(r'class="button load-older" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    params = query_of(older)
    assert params["event"] == ["acme.order.shipped"]
    cursor = params["before"][0]
    assert cursor.endswith("~" + events[PAGE_SIZE - 1]["id"])
    assert row_ids(owner_client.get(older)) == [e["id"] for e in events[PAGE_SIZE:]]
    # The script asks for the rows alone.
    partial = owner_client.get(older + "&partial=rows")
    assert partial.status_code == 200
    assert b"<html" not in partial.content and b"more-marker" not in partial.content
    assert row_ids(partial) == [e["id"] for e in events[PAGE_SIZE:]]


def test_it_gives_the_rows_partial_a_marker_for_the_next_page(owner_client, now):
    store(*[make_event(occurred=now - timedelta(seconds=i)) for i in range(PAGE_SIZE + 1)])
    partial = owner_client.get("/events/?partial=rows").content.decode()
    assert re.search(r'<li class="more-marker" data-next="[^"~]+~[0-9a-f-]{36}" hidden></li>$', partial.strip())


def test_it_stays_stable_when_newer_events_arrive_between_pages(owner_client, now):
    events = [make_event(occurred=now - timedelta(seconds=10 + i)) for i in range(PAGE_SIZE + 3)]
    store(*events)
    html = owner_client.get("/events/").content.decode()
    older = re.search(r'class="button load-older" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    store(make_event(occurred=now))
    assert row_ids(owner_client.get(older)) == [e["id"] for e in events[PAGE_SIZE:]]


def test_it_refuses_a_bad_cursor_with_400_naming_it(owner_client):
    response = owner_client.get("/events/?before=yesterday~nope")
    assert response.status_code == 400
    assert b"Paging cursor" in response.content and b"<code>before</code>" in response.content
    partial = owner_client.get("/events/?partial=rows&before=nope")
    assert partial.status_code == 400
    assert "before" in partial.json()["errors"]


# -- empty state and errors -------------------------------------------------------------------------

def test_it_explains_an_empty_feed_and_how_to_widen_it(owner_client, flow_runs):
    html = owner_client.get("/events/?range=1h&event=acme.*&any=prefect.flow.f1").content.decode()
    assert "No events match" in html
    assert "in the <strong>last hour</strong>" in html
    why = html[html.index('<ul class="why">'):]
    why = why[: why.index("</ul>")]
    assert "<code>acme.*</code>" in why and "<code>prefect.flow.f1</code>" in why
    removes = re.findall(r'<code>acme\.\*</code> <a href="([^"]+)">remove this filter', why)
    assert query_of(removes[0]) == {"range": ["1h"], "any": ["prefect.flow.f1"]}
    wider = re.findall(r'<a class="button" href="([^"]+)">(Last [^<]+)</a>', html)
    assert [label for _, label in wider] == ["Last 24 hours", "Last 7 days", "Last 30 days"]
    assert query_of(wider[0][0]) == {"range": ["24h"], "event": ["acme.*"], "any": ["prefect.flow.f1"]}
    assert "load-older" not in html


def test_it_explains_an_empty_absolute_range(owner_client):
    html = owner_client.get("/events/?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z").content.decode()
    assert 'between <time datetime="2020-01-01T00:00:00Z" data-abs>' in html
    assert "Widen the range:" in html


@pytest.mark.parametrize(
    "query, field, label",
    [
        ("since=yesterday", "since", "From"),
        ("until=2026-01-01T00:00:00", "until", "To"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until", "To"),
        ("range=2h", "range", "Time range"),
        ("resource==x", "resource", "Resource"),
        ("related=flow:=x", "related", "Related"),
        ("q=" + "x" * 201, "q", "Text"),
        ("q=%2A%2A%2A", "q", "Text"),
        ("after=bad", "after", "Paging cursor"),
        ("event=a%00b", "event", "Event"),
    ],
)
def test_it_answers_an_invalid_filter_with_400_and_a_form_error_naming_the_field(owner_client, query, field, label):
    response = owner_client.get(f"/events/?{query}")
    assert response.status_code == 400
    html = response.content.decode()
    assert "This filter can’t be read" in html
    assert f"<strong>{label}</strong> (<code>{field}</code>)" in html
    assert 'id="feed-rows"' not in html


@pytest.mark.parametrize(
    "query, status",
    [
        # Broken rules: a NUL PostgreSQL cannot hold, times outside years 2–9998 (in UTC too),
        # a cursor out of range. Each is a 400 naming the field, never a 500 and never a page.
        *[(q, 400) for q in (
            "q=%00", "event=%00", "any=a%00b", "resource=k%00=v", "since=0001-01-01T00:00:00%2B01:00",
            "until=9999-12-31T23:59:59-01:00", "until=9999-12-31T23:59:59Z", "since=0001-01-01T00:00:00Z",
            "before=0001-01-01T00:00:00Z~" + "0" * 32,
        )],
        # Odd but valid: regex characters are literal, a long name matches nothing, an empty
        # range is the default, year 2 is in range.
        *[(q, 200) for q in (
            "since=0002-01-01T00:00:00Z", "resource=key=[", "any=(*?", "related=%3A", "event=" + "x" * 5000, "range=",
        )],
    ],
)
def test_it_never_answers_500_to_odd_input(owner_client, flow_runs, query, status):
    for url in ("/events/", "/events/names", "/events/histogram", "/events/?partial=rows&"):
        sep = "" if url.endswith("&") else "?"
        response = owner_client.get(f"{url}{sep}{query}")
        assert response.status_code == status, (url, query, response.status_code)
        if status == 400 and "names" not in url and "histogram" not in url and "partial" not in url:
            assert "This filter can’t be read" in response.content.decode()
        elif status == 400:
            field = query.split("=", 1)[0]
            assert list(response.json()["errors"]) == [field]


# -- the event-name picker's endpoint -------------------------------------------------------------

def test_it_lists_event_names_with_counts_grouped_by_namespace(owner_client, flow_runs, minutes_ago):
    store(make_event("prefect.flow-run.Failed", "prefect.flow-run.ccc", occurred=minutes_ago(5)),
          make_event("prefect.flow-run.Failed", "prefect.flow-run.old", occurred=minutes_ago(60 * 30)))
    body = owner_client.get("/events/names").json()
    assert body["groups"] == [
        {"namespace": "prefect.flow-run", "prefix": "prefect.flow-run.*", "count": 3,
         "names": [{"name": "prefect.flow-run.Failed", "count": 2}, {"name": "prefect.flow-run.Completed", "count": 1}]},
        {"namespace": "prefect.worker", "prefix": "prefect.worker.*", "count": 1,
         "names": [{"name": "prefect.worker.started", "count": 1}]},
    ]
    # Over 7 days the old one counts too.
    assert owner_client.get("/events/names?range=7d").json()["groups"][0]["count"] == 4


def test_it_counts_names_under_every_filter_but_the_event_name(owner_client, flow_runs):
    body = owner_client.get("/events/names?event=prefect.worker.*&related=flow:prefect.flow.f1&before=x~y").status_code
    assert body == 400  # the cursor is still validated
    body = owner_client.get("/events/names?event=prefect.worker.*&related=flow:prefect.flow.f1").json()
    assert [g["namespace"] for g in body["groups"]] == ["prefect.flow-run"]
    assert body["groups"][0]["count"] == 2


@pytest.mark.parametrize("query, field", [("since=nope", "since"), ("range=1y", "range"), ("any==v", "any"), ("q=" + "q" * 300, "q")])
def test_it_refuses_bad_input_to_the_names_endpoint_with_400_naming_the_field(owner_client, query, field):
    response = owner_client.get(f"/events/names?{query}")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_it_refuses_to_post_to_the_names_endpoint(owner_client):
    assert owner_client.post("/events/names").status_code == 405


# -- the histogram endpoint ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "span, seconds",
    [(timedelta(minutes=15), 15), (timedelta(hours=1), 60), (timedelta(hours=24), 900),
     (timedelta(days=7), 10800), (timedelta(days=30), 43200), (timedelta(days=3650), 37 * 86400)],
)
def test_it_picks_readable_bucket_sizes(now, span, seconds):
    size = histogram_bucket_seconds(now - span, now)
    assert size == seconds
    assert span.total_seconds() / size <= 100


def test_it_counts_events_over_the_range_in_buckets(owner_client, now):
    # Two events in the same minute bucket, whatever second the test runs at.
    minute = now.replace(second=20) - timedelta(minutes=2)
    store(make_event(occurred=minute), make_event(occurred=minute + timedelta(seconds=5)),
          make_event(occurred=now - timedelta(minutes=30)), make_event(occurred=now - timedelta(hours=2)),
          make_event("other.thing", occurred=now - timedelta(minutes=1)))
    body = owner_client.get("/events/histogram?range=1h&event=acme.order.shipped").json()
    assert body["bucket_seconds"] == 60
    assert 60 <= len(body["buckets"]) <= 61
    assert sum(b["count"] for b in body["buckets"]) == 3
    assert max(b["count"] for b in body["buckets"]) == 2
    first, last = body["buckets"][0], body["buckets"][-1]
    # As times, not strings: "…:00Z" sorts after "…:00.67Z" as text.
    at = datetime.fromisoformat
    assert at(first["start"]) <= at(body["since"]) < at(first["end"])
    assert at(last["start"]) <= at(body["until"]) <= at(last["end"])
    assert body["since"].endswith("Z") and body["until"].endswith("Z")


def test_it_draws_the_histogram_over_an_absolute_range_filtered_like_the_list(owner_client, flow_runs, now):
    since = (now - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    until = now.isoformat().replace("+00:00", "Z")
    body = owner_client.get(f"/events/histogram?since={since}&until={until}&any=prefect.work-pool.k8s").json()
    assert body["since"] == since and body["until"] == until
    assert body["bucket_seconds"] == 900
    assert sum(b["count"] for b in body["buckets"]) == 2


def test_it_bounds_an_open_absolute_range_for_the_histogram(owner_client, now):
    until = (now - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    body = owner_client.get(f"/events/histogram?until={until}").json()
    assert body["until"] == until
    assert body["bucket_seconds"] == 900  # the default 24 hours before `until`


@pytest.mark.parametrize("query, field", [("until=soon", "until"), ("range=1w", "range"), ("resource==1", "resource"),
                                          ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until")])
def test_it_refuses_bad_input_to_the_histogram_endpoint_with_400_naming_the_field(owner_client, query, field):
    response = owner_client.get(f"/events/histogram?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_it_points_the_page_scripts_at_the_endpoints_with_the_same_filter(owner_client, flow_runs):
    html = owner_client.get("/events/?range=7d&event=prefect.flow-run.*&before=2026-01-01T00:00:00Z~" + flow_runs[0]).content.decode()
    hist = re.search(r'data-src="(/events/histogram\?[^"]*)"', html).group(1)
    names = re.search(r'data-src="(/events/names\?[^"]*)"', html).group(1)
    assert query_of(hist) == query_of(names) == {"range": ["7d"], "event": ["prefect.flow-run.*"]}


def test_it_counts_names_for_a_preset_range_from_the_event_counts(owner_client, now):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    store(*[make_event("acme.order.shipped", occurred=now - timedelta(hours=h)) for h in range(1, 6)])
    with CaptureQueriesContext(connection) as captured:
        groups = owner_client.get("/events/names?range=24h").json()["groups"]
    assert groups[0]["names"] == [{"name": "acme.order.shipped", "count": 5}]
    # A preset range ends now: the hours inside it come from EventCount, not from the events.
    assert any("events_eventcount" in q["sql"] for q in captured.captured_queries)


def test_it_gives_the_histogram_an_exact_total_and_counts_by_severity(owner_client, now):
    # A rolled-up filter (names only, 24 h: EventCount) and a raw one (a resource) agree.
    store(make_event("prefect.flow-run.Failed", occurred=now - timedelta(hours=3)),
          make_event("prefect.flow-run.Crashed", occurred=now - timedelta(hours=3)),
          make_event("prefect.flow-run.Late", occurred=now - timedelta(hours=2)),
          make_event("prefect.flow-run.Completed", occurred=now - timedelta(hours=1)),
          make_event("prefect.flow-run.Completed", occurred=now - timedelta(days=2)))
    for query in ("range=24h", "range=24h&resource=acme.order.1", "range=24h&event=prefect.flow-run.*"):
        body = owner_client.get(f"/events/histogram?{query}").json()
        assert body["total"] == 4, query
        totals = {tone: sum(b["severity"][tone] for b in body["buckets"]) for tone in ("bad", "warn", "other")}
        assert totals == {"bad": 2, "warn": 1, "other": 1}, query
        assert all(sum(b["severity"].values()) == b["count"] for b in body["buckets"])


def test_it_catches_up_by_arrival_past_an_event_that_claims_the_future(owner_client, now):
    # The page's newest row claims a time 20 hours ahead: a catch-up from the newest row's time
    # would skip every real event that arrived while the page was disconnected.
    future = make_event("t.future", occurred=now + timedelta(hours=20))
    store(future)
    page = owner_client.get("/events/").content.decode()
    rendered = re.search(r'data-rendered="([^"]+)"', page).group(1)
    gap = [make_event(f"t.gap.{i}") for i in range(3)]
    store(*gap)
    cursor = quote(f"{rendered}~00000000-0000-0000-0000-000000000000")
    rows = owner_client.get(f"/events/?partial=rows&arrived={cursor}").content.decode()
    assert all(e["id"] in rows for e in gap) and future["id"] not in rows
    assert 'data-arrived="' in rows and "data-more" not in rows


def test_it_pages_a_catch_up_by_arrival(owner_client, now):
    start = quote(f"{(now - timedelta(minutes=1)).isoformat()}~00000000-0000-0000-0000-000000000000")
    events = [make_event(f"t.page.{i}") for i in range(PAGE_SIZE + 5)]
    for e in events:
        store(e)
    first = owner_client.get(f"/events/?partial=rows&arrived={start}").content.decode()
    marker = re.search(r'data-arrived="([^"]+)" data-more', first)
    assert marker, "the first page says where the next one starts"
    second = owner_client.get(f"/events/?partial=rows&arrived={quote(marker.group(1))}").content.decode()
    seen = set(re.findall(r'data-id="([0-9a-f-]{36})"', first)) | set(re.findall(r'data-id="([0-9a-f-]{36})"', second))
    assert {e["id"] for e in events} <= seen
    assert "data-more" not in second
