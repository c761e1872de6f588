"""The read API beside the feed: /api/events/filter, /filter/next and /count-by/*."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.conftest import make_event, store

pytestmark = pytest.mark.django_db


def post(client, url, body, auth):
    return client.post(url, json.dumps(body), content_type="application/json", **auth)


@pytest.fixture
def stored(now):
    flow = {"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}
    events = [
        make_event("prefect.flow-run.Running", "prefect.flow-run.1", occurred=now - timedelta(minutes=5), related=[flow]),
        make_event("prefect.flow-run.Completed", "prefect.flow-run.1", occurred=now - timedelta(minutes=4), related=[flow],
                   **{"prefect.resource.name": "crimson-fox"}),
        make_event("prefect.worker.started", "prefect.worker.process.w1", occurred=now - timedelta(minutes=3)),
        make_event("acme.order.shipped", "acme.order.9", occurred=now - timedelta(minutes=2), payload={"carrier": "DHL"}),
    ]
    store(*events)
    return events


def test_it_returns_an_event_page_in_prefects_shape(client, auth, stored):
    r = post(client, "/api/events/filter", {"filter": {"event": {"prefix": ["prefect.flow-run."]}}, "limit": 50}, auth)
    assert r.status_code == 200
    body = r.json()
    assert [e["event"] for e in body["events"]] == ["prefect.flow-run.Completed", "prefect.flow-run.Running"]
    assert body["total"] == 2 and body["next_page"] is None
    assert set(body["events"][0]) == {"occurred", "event", "resource", "related", "payload", "id", "follows", "received"}


def test_it_ors_event_names_and_prefixes_of_different_families(client, auth, stored):
    r = post(client, "/api/events/filter", {"filter": {"event": {"prefix": ["prefect.worker."], "name": ["acme.order.shipped"]}}}, auth)
    assert sorted(e["event"] for e in r.json()["events"]) == ["acme.order.shipped", "prefect.worker.started"]


def test_it_filters_by_related_resource_and_role(client, auth, stored):
    body = {"filter": {"related": {"id": ["prefect.flow.etl"], "role": ["flow"]}}}
    assert len(post(client, "/api/events/filter", body, auth).json()["events"]) == 2
    body = {"filter": {"related": {"id": ["prefect.flow.etl"], "role": ["deployment"]}}}
    assert post(client, "/api/events/filter", body, auth).json()["events"] == []


def test_it_filters_by_labels_and_text(client, auth, stored):
    r = post(client, "/api/events/filter", {"filter": {"resource": {"labels": {"prefect.resource.name": "crimson-*"}}}}, auth)
    assert [e["event"] for e in r.json()["events"]] == ["prefect.flow-run.Completed"]
    r = post(client, "/api/events/filter", {"filter": {"text": {"query": "dhl"}}}, auth)
    assert [e["event"] for e in r.json()["events"]] == ["acme.order.shipped"]
    # Words are found by their start, in the name too.
    r = post(client, "/api/events/filter", {"filter": {"text": {"query": "order.SHIP"}}}, auth)
    assert [e["event"] for e in r.json()["events"]] == ["acme.order.shipped"]


def test_it_refuses_a_text_query_with_nothing_to_search_for(client, auth):
    r = post(client, "/api/events/filter", {"filter": {"text": {"query": "timeout -***"}}}, auth)
    assert r.status_code == 422
    assert r.json()["errors"] == [{"path": "filter.text.query", "rule": "“-***” has no letters or digits to search for"}]


def test_it_pages_with_a_signed_keyset_token(client, auth, stored):
    r = post(client, "/api/events/filter", {"limit": 3}, auth)
    first = r.json()
    assert len(first["events"]) == 3 and first["total"] == 4
    next_url = first["next_page"]
    assert "page-token=" in next_url
    second = client.get(next_url, **auth).json()
    assert [e["id"] for e in second["events"]] == [stored[0]["id"]]
    assert second["next_page"] is None and second["total"] == 4


def test_it_allows_pages_larger_than_prefects_50(client, auth, stored):
    assert post(client, "/api/events/filter", {"limit": 100}, auth).status_code == 200
    r = post(client, "/api/events/filter", {"limit": 501}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "limit"


def test_it_refuses_a_forged_page_token(client, auth):
    r = client.get("/api/events/filter/next?page-token=eyJmIjp7fX0", **auth)
    assert r.status_code == 400 and "page-token" in r.json()["detail"]


def test_it_refuses_unknown_filter_keys_naming_the_path(client, auth):
    r = post(client, "/api/events/filter", {"filter": {"event": {"prefixes": ["a"]}}}, auth)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "filter.event.prefixes"


def test_it_refuses_a_bad_time(client, auth):
    r = post(client, "/api/events/filter", {"filter": {"occurred": {"since": "last week"}}}, auth)
    assert r.json()["errors"] == [{"path": "filter.occurred.since", "rule": "must be an ISO 8601 date-time such as 2026-11-21T09:30:00Z"}]


def test_it_refuses_malformed_json(client, auth):
    r = client.post("/api/events/filter", "{", content_type="application/json", **auth)
    assert r.status_code == 400


def test_it_requires_a_key_or_a_session(client, owner, stored):
    assert post(client, "/api/events/filter", {}, {}).status_code == 401
    assert post(client, "/api/events/filter", {}, {"HTTP_AUTHORIZATION": "Bearer nope"}).status_code == 403
    client.force_login(owner)
    assert post(client, "/api/events/filter", {}, {}).status_code == 200


@pytest.mark.parametrize("method, url", [
    ("get", "/api/events/filter/next?page-token=x"),
    ("post", "/api/events/count-by/event"),
    ("post", "/api/events/count-by/day"),
])
def test_it_refuses_the_other_read_endpoints_without_a_key(client, db, method, url):
    send = getattr(client, method)
    assert send(url, content_type="application/json").status_code == 401
    assert send(url, content_type="application/json", HTTP_AUTHORIZATION="Bearer nope").status_code == 403


def test_it_counts_by_event(client, auth, stored):
    r = post(client, "/api/events/count-by/event", {"filter": {}}, auth)
    assert r.status_code == 200
    rows = {row["value"]: row["count"] for row in r.json()}
    assert rows["prefect.flow-run.Running"] == 1 and len(rows) == 4
    assert set(r.json()[0]) == {"value", "label", "count", "start_time", "end_time"}


def test_it_counts_by_resource_with_names(client, auth, stored):
    r = post(client, "/api/events/count-by/resource", {"filter": {}}, auth)
    first = r.json()[0]
    assert first == {**first, "value": "prefect.flow-run.1", "count": 2, "label": "crimson-fox"}


def test_it_counts_by_time_in_zero_filled_buckets(client, auth, stored, now):
    since = (now - timedelta(minutes=10)).isoformat()
    until = now.isoformat()
    body = {"filter": {"occurred": {"since": since, "until": until}}, "time_unit": "minute", "time_interval": 1}
    r = post(client, "/api/events/count-by/time", body, auth)
    buckets = r.json()
    assert sum(b["count"] for b in buckets) == 4
    assert len(buckets) in (10, 11)
    assert [b["value"] for b in buckets] == [str(i) for i in range(len(buckets))]
    assert any(b["count"] == 0 for b in buckets)


def test_it_counts_by_day_in_whole_days_from_prefects_pivot(client, auth, stored, now):
    since = (now - timedelta(days=3)).isoformat()
    body = {"filter": {"occurred": {"since": since, "until": now.isoformat()}}}
    buckets = post(client, "/api/events/count-by/day", body, auth).json()
    assert sum(b["count"] for b in buckets) == 4
    assert len(buckets) in (4, 5)
    # Zero-filled, and each bucket starts at midnight UTC (the pivot is 2024-04-01T00:00Z).
    assert all(b["label"].endswith("T00:00:00+00:00") for b in buckets)
    assert any(b["count"] == 0 for b in buckets)


def test_it_refuses_too_many_buckets(client, auth):
    body = {"filter": {"occurred": {"since": "2026-01-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}}, "time_unit": "minute"}
    r = post(client, "/api/events/count-by/time", body, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "time_interval"


def test_it_refuses_a_bad_time_unit_and_unknown_countables(client, auth):
    r = post(client, "/api/events/count-by/time", {"filter": {}, "time_unit": "fortnight"}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "time_unit"
    assert post(client, "/api/events/count-by/colour", {"filter": {}}, auth).status_code == 404
    r = post(client, "/api/events/count-by/event", {}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "filter"


def test_it_refuses_nul_characters_and_out_of_range_years(client, auth):
    r = post(client, "/api/events/filter", {"filter": {"event": {"name": ["a\u0000b"]}}}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "filter.event.name[0]"
    r = post(client, "/api/events/filter", {"filter": {"occurred": {"since": "0001-01-01T00:00:00+01:00"}}}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "filter.occurred.since"
    r = post(client, "/api/events/filter", {"filter": {"text": {"query": "x\u0000"}}}, auth)
    assert r.status_code == 422
