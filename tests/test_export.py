"""Export: POST /api/events/export, the feed's Export link and `manage.py export_events`."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from eventfeed.events import export
from tests.conftest import make_event, store

pytestmark = pytest.mark.django_db

HOSTILE = 'a "quoted", comma;\nnew line\r\ttab \\ back =HYPERLINK("x") 🦊 \u2028'
BIG = 2**70 + 1


@pytest.fixture
def stored(now):
    events = [
        make_event("acme.order.created", f"acme.order.{i}", occurred=now - timedelta(minutes=i),
                   payload={"note": HOSTILE, "n": BIG, "i": i}, **{"acme.label": HOSTILE})
        for i in range(7)
    ]
    events.append(make_event("prefect.flow-run.Running", "prefect.flow-run.1", occurred=now - timedelta(minutes=3)))
    store(*events)
    return events


@pytest.fixture
def small_pages(monkeypatch):
    # Pages of 3 so that a handful of events crosses several keyset pages.
    monkeypatch.setattr(export, "PAGE", 3)


def post(client, body, auth, query=""):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"/api/events/export{query}", data, content_type="application/json", **auth)


def filtered(client, body, auth) -> list[dict]:
    return client.post("/api/events/filter", json.dumps({**body, "limit": 500}), content_type="application/json", **auth).json()["events"]


def ndjson(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_it_exports_ndjson_equal_to_the_filters_results(client, auth, stored, small_pages):
    body = {"filter": {"event": {"prefix": ["acme."]}}}
    r = post(client, body, auth)
    assert r.status_code == 200 and r["Content-Type"] == "application/x-ndjson"
    assert "attachment" in r["Content-Disposition"]
    rows = ndjson(r)
    assert len(rows) == 7
    assert rows == filtered(client, body, auth)
    assert rows[0]["payload"]["n"] == BIG and rows[0]["payload"]["note"] == HOSTILE


def test_it_exports_csv_that_reads_back_to_the_same_events(client, auth, stored, small_pages):
    body = {"filter": {"resource": {"labels": {"acme.label": HOSTILE}}}}
    r = post(client, body, auth, "?format=csv")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode(), newline="")))
    expected = filtered(client, body, auth)
    assert len(rows) == len(expected) == 7
    for row, event in zip(rows, expected):
        assert row["id"] == event["id"] and row["occurred"] == event["occurred"] and row["event"] == event["event"]
        assert row["resource_id"] == event["resource"]["prefect.resource.id"]
        assert json.loads(row["payload"]) == event["payload"] and json.loads(row["resource"]) == event["resource"]
        assert json.loads(row["related"]) == event["related"] and row["follows"] == ""


def test_it_exports_everything_for_an_empty_body_and_nothing_for_no_match(client, auth, stored):
    assert len(ndjson(post(client, "", auth))) == 8
    r = post(client, {"filter": {"event": {"name": ["nothing.like.this"]}}}, auth, "?format=csv")
    assert b"".join(r.streaming_content).decode() == ",".join(export.CSV_COLUMNS) + "\r\n"


def test_it_accepts_a_signed_in_session_and_refuses_anonymous_and_bad_keys(client, owner, stored):
    assert post(client, {}, {}).status_code == 401
    assert post(client, {}, {"HTTP_AUTHORIZATION": "Bearer evf_wrong"}).status_code == 403
    client.force_login(owner)
    assert len(ndjson(post(client, {}, {}))) == 8


def test_it_refuses_bad_input_naming_the_field(client, auth):
    r = post(client, {}, auth, "?format=xml")
    assert r.status_code == 422 and r.json()["errors"] == [{"path": "format", "rule": "must be ndjson or csv"}]
    r = post(client, {"filter": {"occurred": {"since": "yesterday"}}}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "filter.occurred.since"
    r = post(client, {"filter": {}, "limit": 5}, auth)
    assert r.status_code == 422 and r.json()["errors"][0]["path"] == "limit"
    assert post(client, "[1, 2]", auth).status_code == 422
    assert post(client, "{nope", auth).status_code == 400


def test_it_exports_the_feeds_current_filter_from_its_link(client, owner, stored, small_pages):
    client.force_login(owner)
    page = client.get("/events/?event=prefect.flow-run.*").content.decode()
    assert 'href="/events/export?event=prefect.flow-run.%2A"' in page
    rows = ndjson(client.get("/events/export?event=prefect.flow-run.*"))
    assert [r["event"] for r in rows] == ["prefect.flow-run.Running"]
    r = client.get("/events/export?range=7d&event=acme.*&format=csv")
    assert len(list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode(), newline="")))) == 7


def test_it_refuses_the_feed_export_to_anonymous_and_bad_input(client, owner):
    assert client.get("/events/export").status_code == 302
    client.force_login(owner)
    assert client.get("/events/export?format=xml").json() == {"errors": {"format": ["Use ndjson or csv."]}}
    r = client.get("/events/export?since=yesterday")
    assert r.status_code == 400 and "since" in r.json()["errors"]


def test_it_writes_a_file_from_the_command(tmp_path, stored, small_pages):
    target = tmp_path / "out.ndjson"
    call_command("export_events", "--filter", '{"event": {"prefix": ["acme."]}}', "-o", str(target))
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 7 and {r["payload"]["n"] for r in rows} == {BIG}
    (tmp_path / "f.json").write_text('{"event": {"name": ["prefect.flow-run.Running"]}}')
    call_command("export_events", "--filter", f"@{tmp_path / 'f.json'}", "--format", "csv", "-o", str(tmp_path / "o.csv"))
    assert len((tmp_path / "o.csv").read_text().splitlines()) == 2
    with pytest.raises(CommandError, match="filter.event.name"):
        call_command("export_events", "--filter", '{"event": {"name": 5}}')


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_it_streams_page_by_page_under_asgi(async_client, api_key, small_pages):
    from asgiref.sync import sync_to_async

    await sync_to_async(store)(*[make_event("acme.order.created", f"acme.order.{i}") for i in range(8)])
    r = await async_client.post("/api/events/export", "{}", content_type="application/json",
                                headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 200 and r.is_async
    chunks = [chunk async for chunk in r.streaming_content]
    # Three pages of at most three events: the body arrives as it is read, not as one piece.
    assert [c.count(b"\n") for c in chunks] == [3, 3, 2]
