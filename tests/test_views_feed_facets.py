"""The facets beside the feed (/events/facets) and the bounded, marked-as-estimated counts
(facets and the histogram's total) for filters the rollups cannot serve."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qsl, urlparse

import pytest
from django.db import transaction
from django.http import QueryDict
from hypothesis import HealthCheck, given, settings, strategies as st

from eventfeed.events import facets as facets_module, queries
from eventfeed.events.filtersets import FeedFilterSet
from eventfeed.events.templatetags.eventfeed import facet_link
from eventfeed.events.views import _bounded_filter

from .conftest import make_event, store

pytestmark = pytest.mark.django_db

FLOW = {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow", "prefect.resource.name": "etl-orders"}
POOL = {"prefect.resource.id": "prefect.work-pool.k8s", "prefect.resource.role": "work-pool"}
DEPLOYMENT = {"prefect.resource.id": "prefect.deployment.d1", "prefect.resource.role": "deployment", "prefect.resource.name": "etl/nightly"}
PROD = {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}
DEV = {"prefect.resource.id": "prefect.tag.dev", "prefect.resource.role": "tag"}


@pytest.fixture
def runs(minutes_ago):
    """Four events: two flow-run states on a deployment (one tagged prod and dev), a worker, an order."""
    events = [
        make_event("prefect.flow-run.Failed", "prefect.flow-run.aaa", occurred=minutes_ago(1), related=[FLOW, DEPLOYMENT, POOL, PROD, DEV],
                   **{"prefect.state-name": "Failed"}),
        make_event("prefect.flow-run.Completed", "prefect.flow-run.bbb", occurred=minutes_ago(2), related=[FLOW, DEPLOYMENT, PROD],
                   **{"prefect.state-name": "Completed"}),
        make_event("prefect.worker.started", "prefect.worker.kubernetes.w1", occurred=minutes_ago(3), related=[POOL]),
        make_event("acme.order.shipped", "acme.order.1", occurred=minutes_ago(4)),
    ]
    store(*events)
    return [e["id"] for e in events]


def facet_values(html: str) -> dict[str, dict[str, dict]]:
    """{facet title: {value label: {"count": text, "include": url, "exclude": url}}} from the partial."""
    out: dict[str, dict[str, dict]] = {}
    for section in re.findall(r'<section class="facet".*?</section>', html, re.S):
        title = unescape(re.search(r"<h3[^>]*>(.*?)</h3>", section, re.S).group(1).strip())
        values = out.setdefault(title, {})
        for li in re.findall(r'<li class="facet-value.*?</li>', section, re.S):
            label = unescape(re.search(r'<span class="fv"[^>]*>(.*?)</span>', li, re.S).group(1))
            count = re.sub(r"<[^>]+>", "", re.search(r'<span class="fc"[^>]*>(.*?)</span>\s*<a', li, re.S).group(1))
            links = re.findall(r'<a class="(fin|fout)[^"]*" href="([^"]+)"', li)
            values[label] = {"count": unescape(count), **{("include" if k == "fin" else "exclude"): unescape(u) for k, u in links}}
    return out


def row_ids(response) -> list[str]:
    return re.findall(r'<li class="row" data-id="([0-9a-f-]+)"', response.content.decode())


# -- who may see it ---------------------------------------------------------------------------------

def test_it_redirects_anonymous_visitors_to_the_login_page(client, runs):
    response = client.get("/events/facets")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_shows_every_signed_in_user_the_same_facets_of_the_shared_feed(client, owner, other_user, runs):
    pages = []
    for user in (owner, other_user):
        client.force_login(user)
        response = client.get("/events/facets?range=24h")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/html")
        pages.append(facet_values(response.content.decode()))
    assert pages[0] == pages[1]


@pytest.mark.parametrize("query, field", [("until=soon", "until"), ("range=1w", "range"), ("resource==1", "resource"),
                                          ("q=***", "q"), ("related=a%00b", "related"),
                                          ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until")])
def test_it_refuses_bad_input_with_400_naming_the_field(owner_client, query, field):
    response = owner_client.get(f"/events/facets?{query}")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_it_refuses_to_post(owner_client):
    assert owner_client.post("/events/facets").status_code == 405


# -- what it shows ----------------------------------------------------------------------------------

def test_it_counts_each_facet_for_the_filter_and_range(owner_client, runs, now):
    store(make_event("prefect.flow-run.Failed", "prefect.flow-run.old", occurred=now - timedelta(days=2), related=[PROD]))
    html = owner_client.get("/events/facets?range=24h").content.decode()
    assert '<span class="facets-total">4 events</span>' in html and "estimated" not in html
    values = facet_values(html)
    assert {k: v["count"] for k, v in values["Event"].items()} == {"prefect.flow-run.*": "2", "prefect.worker.*": "1", "acme.order.*": "1"}
    assert {k: v["count"] for k, v in values["State"].items()} == {"Completed": "1", "Failed": "1"}
    assert {k: v["count"] for k, v in values["Resource kind"].items()} == {
        "prefect.flow-run.*": "2", "prefect.worker.kubernetes.*": "1", "acme.order.*": "1"}
    assert {k: v["count"] for k, v in values["Deployment"].items()} == {"etl/nightly": "2"}
    assert {k: v["count"] for k, v in values["Tag"].items()} == {"prod": "2", "dev": "1"}
    assert {k: v["count"] for k, v in values["Related work pool"].items()} == {"prefect.work-pool.k8s": "2"}
    assert {k: v["count"] for k, v in values["Related flow"].items()} == {"etl-orders": "2"}
    # Under a filter: only what it matches.
    values = facet_values(owner_client.get("/events/facets?range=24h&related=tag:prefect.tag.dev").content.decode())
    assert {k: v["count"] for k, v in values["Event"].items()} == {"prefect.flow-run.*": "1"}


def test_it_links_include_and_exclude_to_feed_filters_that_show_those_events(owner_client, runs):
    values = facet_values(owner_client.get("/events/facets?range=24h").content.decode())
    prod = values["Tag"]["prod"]
    assert dict(parse_qsl(urlparse(prod["include"]).query)) == {"range": "24h", "related": "tag:prefect.tag.prod"}
    assert dict(parse_qsl(urlparse(prod["exclude"]).query)) == {"range": "24h", "related": "!tag:prefect.tag.prod"}
    assert row_ids(owner_client.get(prod["include"])) == runs[:2]
    # Exclude leaves out every event tagged prod, also the one tagged prod and dev.
    assert row_ids(owner_client.get(prod["exclude"])) == runs[2:]
    state = values["State"]["Failed"]
    assert row_ids(owner_client.get(state["include"])) == runs[:1]
    assert row_ids(owner_client.get(state["exclude"])) == runs[1:]  # events without a state stay
    assert row_ids(owner_client.get(values["Event"]["prefect.flow-run.*"]["exclude"])) == runs[2:]
    assert row_ids(owner_client.get(values["Resource kind"]["prefect.worker.kubernetes.*"]["exclude"])) == [runs[0], runs[1], runs[3]]


def test_it_turns_an_active_include_into_its_removal_and_swaps_include_for_exclude(owner_client, runs):
    html = owner_client.get("/events/facets?range=24h&related=tag:prefect.tag.prod").content.decode()
    prod = facet_values(html)["Tag"]["prod"]
    assert 'class="fin on"' in html
    assert dict(parse_qsl(urlparse(prod["include"]).query)) == {"range": "24h"}
    assert parse_qsl(urlparse(prod["exclude"]).query) == [("range", "24h"), ("related", "!tag:prefect.tag.prod")]


def test_it_shows_an_active_exclusion_as_a_negated_pill(owner_client, runs):
    html = owner_client.get("/events/?related=!tag:prefect.tag.prod").content.decode()
    assert re.search(r'<li class="pill pill-related negated"><span class="k">Related not</span><span class="v">tag:prefect.tag.prod</span>', html)


def test_it_places_the_facets_after_the_list_and_loads_them_with_the_same_filter(owner_client, runs):
    html = owner_client.get("/events/?range=7d&event=prefect.flow-run.*").content.decode()
    src = re.search(r'id="facets" data-src="(/events/facets\?[^"]*)"', html).group(1)
    assert dict(parse_qsl(urlparse(unescape(src)).query)) == {"range": "7d", "event": "prefect.flow-run.*"}
    # Its links come after the rows in tab order: the keyboard reaches the events first.
    assert html.index('id="feed-rows"') < html.index('id="facets"')


def test_it_counts_names_from_the_event_counts_when_the_filter_is_names_only(owner_client, runs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        owner_client.get("/events/facets?range=24h&event=prefect.*")
    assert any("events_eventcount" in q["sql"] for q in captured.captured_queries)


# -- estimates --------------------------------------------------------------------------------------

@pytest.fixture
def busy_bucket(now):
    """60 flow-run events in one quarter hour, every third on pool k8s, and an order."""
    start = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0) - timedelta(hours=2)
    events = [make_event("prefect.flow-run.Running", f"prefect.flow-run.r{i}", occurred=start + timedelta(seconds=10 * i),
                         related=[POOL] if i % 3 == 0 else [FLOW]) for i in range(60)]
    store(*events, make_event("acme.order.shipped", occurred=start))
    return events


def test_it_estimates_from_a_bounded_sample_and_says_so(owner_client, busy_bucket, monkeypatch):
    monkeypatch.setattr(queries, "EXACT_CAP", 5)
    monkeypatch.setattr(facets_module, "EXACT_CAP", 5)
    monkeypatch.setattr(facets_module, "FACET_SAMPLE", 100)  # a few events per bucket
    html = owner_client.get("/events/facets?range=24h&related=work-pool:prefect.work-pool.k8s").content.decode()
    assert re.search(r'<span class="facets-total"[^>]*>about \d+ events \(estimated\)</span>', html) and "Counts marked" in html
    pool = facet_values(html)["Related work pool"]["prefect.work-pool.k8s"]
    assert pool["count"].startswith("≈")
    # Names only: the total and the event names are exact, the rest estimated.
    html = owner_client.get("/events/facets?range=24h").content.decode()
    assert '<span class="facets-total">61 events</span>' in html
    assert facet_values(html)["Event"]["prefect.flow-run.*"]["count"] == "60"
    assert facet_values(html)["Related flow"]["etl-orders"]["count"].startswith("≈")


def test_it_estimates_the_histogram_total_for_a_filter_the_counts_cannot_serve(owner_client, busy_bucket, monkeypatch):
    body = owner_client.get("/events/histogram?range=24h&related=work-pool:prefect.work-pool.k8s").json()
    assert body["total"] == 20 and body["estimated"] is False  # few matches, found by the index: exact
    monkeypatch.setattr(queries, "EXACT_CAP", 5)
    monkeypatch.setattr(queries, "SAMPLE_PER_BUCKET", 6)
    body = owner_client.get("/events/histogram?range=24h&related=work-pool:prefect.work-pool.k8s").json()
    assert body["estimated"] is True
    # The newest 6 of the busy quarter hour were read, 2 of them on k8s: 60 × 2/6.
    assert body["total"] == 20
    assert all(sum(b["severity"].values()) == b["count"] for b in body["buckets"])
    # Free text with a word it needs: the word index finds its few events, exactly.
    body = owner_client.get("/events/histogram?range=24h&q=nothing-here").json()
    assert body["estimated"] is False and body["total"] == 0
    body = owner_client.get("/events/histogram?range=24h&q=running").json()
    assert body["estimated"] is True and body["total"] == 61  # the newest 6 of 61 all match: 61 × 6/6
    body = owner_client.get("/events/histogram?range=24h&q=-shipped").json()
    assert body["estimated"] is True  # no word it needs: no index finds its events


def test_it_reads_a_bounded_number_of_events_for_an_estimate(busy_bucket, now, monkeypatch):
    f = _bounded_filter(_form("range=24h&q=running"))
    assert queries.FilterSample.draw(f, 6, ("event",)).exact  # 61 events: all of them are read
    monkeypatch.setattr(queries, "EXACT_CAP", 5)
    sample = queries.FilterSample.draw(f, 6, ("event",))
    assert not sample.exact
    assert sum(sample.seen.values()) == 6  # of the busy quarter hour's 61, its newest 6


def _form(query: str) -> FeedFilterSet:
    form = FeedFilterSet(QueryDict(query))
    assert form.is_valid(), form.errors
    return form


# -- exact facets equal counting the filter's results ----------------------------------------------

IDS = ["r.1", "r.2", "s.1"]
ROLES = ["flow", "tag", "deployment"]
REL = ["f.1", "f.2", "prefect.tag.t1", "prefect.tag.t2"]


@st.composite
def events(draw, now):
    related = [{"prefect.resource.id": draw(st.sampled_from(REL)), "prefect.resource.role": draw(st.sampled_from(ROLES))}
               for _ in range(draw(st.integers(0, 3)))]
    labels = draw(st.sampled_from([{}, {"prefect.state-name": "Failed"}, {"prefect.state-name": "Completed"}]))
    return make_event(draw(st.sampled_from(["a.b.c", "a.b.d", "a.x", "b.y.z", "solo"])), draw(st.sampled_from(IDS)),
                      related=related, occurred=now - timedelta(minutes=draw(st.integers(1, 600))),
                      id=uuid.UUID(int=draw(st.integers(1, 2**64))), **labels)


QUERIES = ["", "event=a.*", "event=!a.b.*", "event=a.b.*&event=solo", "resource=r.*", "related=tag:*", "related=!flow:f.1", "any=f.2",
           "resource=prefect.state-name=Failed", "q=solo"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), query=st.sampled_from(QUERIES))
def test_it_counts_exactly_what_the_include_and_exclude_filters_select(owner, now, data, query):
    batch = data.draw(st.lists(events(now), min_size=1, max_size=12, unique_by=lambda e: e["id"]))
    with transaction.atomic():
        store(*batch)
        base = f"range=24h&{query}".rstrip("&")
        f = _bounded_filter(_form(base))
        result = facets_module.facets(f)
        assert not result.estimated
        assert result.total == len(f.page(limit=100)[0])
        for facet in result.facets:
            assert not facet.estimated
            for v in facet.values:
                # Through the links the partial renders.
                include = facet_link(QueryDict(base), v.param, v.include, v.only)
                exclude = facet_link(QueryDict(base), v.param, v.exclude)["url"]
                if include["on"]:
                    continue  # a value in force links to its removal, or swaps it for its exclusion
                included = _bounded_filter(_form(urlparse(include["url"]).query))
                assert len(included.page(limit=100)[0]) == v.count, (facet.key, v)
                excluded = _bounded_filter(_form(urlparse(exclude).query))
                assert len(excluded.page(limit=100)[0]) == result.total - v.count, (facet.key, v)
        transaction.set_rollback(True)
