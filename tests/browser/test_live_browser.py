"""The live feed in a real browser: events posted to the HTTP door appear in open pages."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.events.models import ApiKey
from tests.conftest import make_event, store


@pytest.fixture
def post(asgi_server, transactional_db):
    _, key = ApiKey.create("browser test")

    def post(*events):
        request = urllib.request.Request(
            asgi_server + "/api/events", json.dumps(list(events)).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        return events

    return post


def open_feed(page, query=""):
    page.goto(page.server + "/events/" + query)
    page.wait_for_selector("[data-live-status][data-state=live]", timeout=10_000)


def row(page, event):
    return page.locator(f'.row[data-id="{event["id"]}"]')


def test_it_shows_a_posted_event_in_a_matching_page_only(signed_in_page, browser, post):
    page = signed_in_page
    other = page.context.new_page()
    other.server = page.server
    open_feed(page, "?event=acme.order.*")
    open_feed(other, "?event=prefect.flow-run.*")
    [event] = post(make_event("acme.order.shipped", "acme.order.42", **{"prefect.resource.name": "Order 42"}))
    row(page, event).wait_for(timeout=5_000)
    assert "Order 42" in row(page, event).inner_text()
    other.wait_for_timeout(1_000)
    assert row(other, event).count() == 0


def test_it_holds_new_events_while_paused_and_brings_them_in_with_one_click(signed_in_page, post):
    page = signed_in_page
    open_feed(page)
    page.click("[data-live-toggle]")
    assert page.locator("[data-live-status]").get_attribute("data-state") == "paused"
    events = post(*[make_event(f"t.paused.{i}") for i in range(3)])
    page.locator("[data-new-events]", has_text="3 new — show").wait_for(timeout=5_000)
    assert row(page, events[0]).count() == 0
    page.click("[data-new-events]")
    for event in events:
        row(page, event).wait_for(timeout=2_000)
    assert page.locator("[data-new-events]").is_hidden()


def test_it_pauses_by_itself_when_the_reader_scrolls_down(signed_in_page, post):
    now = datetime.now(timezone.utc)
    store(*[make_event(f"t.old.{i}", occurred=now - timedelta(minutes=i + 1)) for i in range(60)])
    page = signed_in_page
    page.set_viewport_size({"width": 1280, "height": 500})
    open_feed(page)
    page.mouse.wheel(0, 2_000)
    page.wait_for_function("scrollY > 300")
    [event] = post(make_event("t.while-reading"))
    page.locator("[data-new-events]", has_text="1 new — show").wait_for(timeout=5_000)
    assert row(page, event).count() == 0


def test_it_catches_up_after_a_dropped_socket_without_gaps_or_duplicates(signed_in_page, post):
    page = signed_in_page
    open_feed(page)
    [first] = post(make_event("t.before-drop"))
    row(page, first).wait_for(timeout=5_000)
    page.evaluate("window.eventfeedLive.drop()")
    page.wait_for_selector("[data-live-status][data-state=reconnecting]", timeout=5_000)
    missed = post(*[make_event(f"t.missed.{i}") for i in range(5)])
    page.wait_for_selector("[data-live-status][data-state=live]", timeout=15_000)
    for event in missed:
        row(page, event).wait_for(timeout=5_000)
    ids = page.eval_on_selector_all(".row", "rows => rows.map(r => r.dataset.id)")
    assert len(ids) == len(set(ids))
    assert ids.index(missed[0]["id"]) > ids.index(missed[4]["id"])  # newest first


def test_it_resubscribes_when_the_filter_changes_without_a_reload(signed_in_page, post):
    page = signed_in_page
    open_feed(page, "?event=a.*")
    page.evaluate("window.__sameDocument = true")
    page.click(".ranges a[href*='range=1h']")
    page.wait_for_url("**range=1h**")
    page.wait_for_selector("[data-live-status][data-state=live]")
    [event] = post(make_event("a.after-change"))
    row(page, event).wait_for(timeout=5_000)
    assert page.evaluate("window.__sameDocument") is True


def test_it_places_a_late_event_in_time_order(signed_in_page, post):
    page = signed_in_page
    now = datetime.now(timezone.utc)
    newer, older = post(make_event("t.newer", occurred=now), make_event("t.older", occurred=now - timedelta(minutes=1)))
    open_feed(page)
    [late] = post(make_event("t.late", occurred=now - timedelta(seconds=30)))
    row(page, late).wait_for(timeout=5_000)
    ids = page.eval_on_selector_all(".row", "rows => rows.map(r => r.dataset.id)")
    assert ids.index(newer["id"]) < ids.index(late["id"]) < ids.index(older["id"])


def test_it_catches_up_by_arrival_past_an_event_that_claims_the_future(signed_in_page, post):
    # The newest row claims a time 20 hours ahead. A catch-up from the newest row's time missed
    # every event of the gap; by arrival it misses none.
    page = signed_in_page
    post(make_event("t.future", occurred=datetime.now(timezone.utc) + timedelta(hours=20)))
    open_feed(page)
    page.evaluate("window.eventfeedLive.drop()")
    page.wait_for_selector("[data-live-status][data-state=reconnecting]", timeout=5_000)
    missed = post(*[make_event(f"t.gap.{i}") for i in range(3)])
    page.wait_for_selector("[data-live-status][data-state=live]", timeout=15_000)
    for event in missed:
        row(page, event).wait_for(timeout=5_000)
