"""The feed page in chromium: filters, pasted URLs, load older, chips, histogram, times."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.conftest import make_event, store

SHOTS = "/tmp/shots"
FLOW = {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow", "prefect.resource.name": "etl-orders"}
OTHER_FLOW = {"prefect.resource.id": "prefect.flow.f2", "prefect.resource.role": "flow", "prefect.resource.name": "nightly-report"}
POOL = {"prefect.resource.id": "prefect.work-pool.k8s", "prefect.resource.role": "work-pool", "prefect.resource.name": "k8s-prod"}
TAG = {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}


def params(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def shown(page) -> list[str]:
    return page.locator("#feed-rows .row").evaluate_all("rows => rows.map(r => r.dataset.id)")


def wait_shown(page, ids: list[str]) -> None:
    """Back/forward change the URL at once and the rows when the new feed has loaded (within
    15 s: CI runs two suites on two cores, and a page there once took over 5 s)."""
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('#feed-rows .row')].map(r => r.dataset.id)) === JSON.stringify(ids)",
        arg=ids, timeout=15_000,
    )


def open_page(browser, server: str, *, width: int = 1280, timezone_id: str = "Europe/Berlin", session: str | None = None):
    """A page in a fresh browser context, signed in with `session` (or a new user's session)."""
    if session is None:
        user, _ = get_user_model().objects.get_or_create(username="viewer")
        client = Client()
        client.force_login(user)
        session = client.cookies["sessionid"].value
    context = browser.new_context(viewport={"width": width, "height": 900}, timezone_id=timezone_id)
    context.add_cookies([{"name": "sessionid", "value": session, "url": server}])
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.server = server
    page.session = session
    return page


@pytest.fixture
def feed_page(browser, asgi_server, transactional_db):
    page = open_page(browser, asgi_server)
    yield page
    assert page.errors == []
    page.context.close()


@pytest.fixture
def events():
    """A small, realistic feed: flow runs of two flows, a worker, a pod; newest first."""
    now = datetime.now(timezone.utc)
    raw = [
        make_event("prefect.flow-run.Failed", "prefect.flow-run.r1", occurred=now - timedelta(minutes=2),
                   related=[FLOW, POOL, TAG], payload={"message": "KeyError customer_id"},
                   **{"prefect.resource.name": "amber-falcon", "prefect.state-type": "FAILED"}),
        make_event("prefect.flow-run.Completed", "prefect.flow-run.r2", occurred=now - timedelta(minutes=20),
                   related=[OTHER_FLOW, POOL, TAG], **{"prefect.resource.name": "quiet-otter", "prefect.state-type": "COMPLETED"}),
        make_event("prefect.worker.started", "prefect.worker.kubernetes.w1", occurred=now - timedelta(minutes=50),
                   related=[POOL], **{"prefect.resource.name": "k8s-worker-1"}),
        make_event("prefect.flow-run.Running", "prefect.flow-run.r3", occurred=now - timedelta(hours=3),
                   related=[FLOW, POOL], **{"prefect.resource.name": "brisk-heron", "prefect.state-type": "RUNNING"}),
        make_event("prefect.kubernetes.pod.failed", "prefect.kubernetes.pod.p1", occurred=now - timedelta(hours=6),
                   related=[OTHER_FLOW], **{"prefect.resource.name": "nightly-report-x1", "kubernetes.namespace": "prefect"}),
    ]
    store(*raw)
    return [e["id"] for e in raw]


def test_it_filters_by_an_event_prefix_picked_from_the_stored_names(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    assert shown(page) == events
    page.click("#event-picker summary")
    page.locator(".names .ns .pick", has_text="prefect.flow-run.*").wait_for()
    assert page.locator(".names .ns", has_text="prefect.flow-run.*").locator(".n").inner_text() == "3"
    page.click(".names .ns .pick >> text=prefect.flow-run.*")
    page.wait_for_url("**event=prefect.flow-run.*")
    assert params(page.url)["event"] == ["prefect.flow-run.*"]
    assert shown(page) == [events[0], events[1], events[3]]
    assert page.locator(".pill-event .v").inner_text() == "prefect.flow-run.*"
    # An exclusion picked from the same list adds to the filter.
    page.click("#event-picker summary")
    page.locator(".names .nm", has_text="prefect.flow-run.Failed").locator(".exclude").click()
    page.wait_for_url("**Failed")
    assert params(page.url)["event"] == ["prefect.flow-run.*", "!prefect.flow-run.Failed"]
    assert shown(page) == [events[1], events[3]]
    # Back and forward walk through the states.
    page.go_back()
    page.wait_for_url(lambda url: "Failed" not in url)
    wait_shown(page, [events[0], events[1], events[3]])
    page.go_forward()
    page.wait_for_url("**Failed")
    wait_shown(page, [events[1], events[3]])
    # Removing the pill removes only that filter.
    page.click(".pill.negated .x")
    page.wait_for_url(lambda url: "Failed" not in url)
    assert shown(page) == [events[0], events[1], events[3]]


def test_it_filters_by_a_typed_event_name(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.click("#event-picker summary")
    page.fill("[data-event-input]", "prefect.worker.started")
    page.keyboard.press("Enter")
    page.wait_for_url("**event=prefect.worker.started")
    assert shown(page) == [events[2]]
    assert "q=" not in page.url and "any=" not in page.url


def test_it_filters_by_resource_label_and_related_role(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.click("#resource-picker summary")
    page.click("#resource-picker label.seg:has-text('Primary')")
    page.fill("[data-resource-input]", "prefect.state-type=*ED")
    page.keyboard.press("Enter")
    page.wait_for_url("**resource=prefect.state-type*")
    assert params(page.url)["resource"] == ["prefect.state-type=*ED"]
    assert shown(page) == [events[0], events[1]]
    page.click("#resource-picker summary")
    page.click("#resource-picker label.seg:has-text('Related')")
    page.fill("[data-role-input]", "flow")
    page.fill("[data-resource-input]", "prefect.flow.f1")
    page.keyboard.press("Enter")
    page.wait_for_url("**related=*")
    assert params(page.url)["related"] == ["flow:prefect.flow.f1"]
    assert shown(page) == [events[0]]


def test_it_filters_by_free_text(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.keyboard.press("/")
    page.keyboard.type("customer_id")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=customer_id")
    assert shown(page) == [events[0]]
    assert page.locator("#feed-filters input[name=q]").input_value() == "customer_id"


def test_it_filters_by_time_presets_and_an_absolute_range(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.click(".ranges a:has-text('1h')")
    page.wait_for_url("**range=1h")
    assert shown(page) == events[:3]
    page.click(".ranges a:has-text('15m')")
    page.wait_for_url("**range=15m")
    assert shown(page) == [events[0]]
    # An absolute range typed in UTC is sent as ISO UTC with Z.
    page.click("[data-tz=utc]")
    page.click("[data-toggle=range-form]")
    now = datetime.now(timezone.utc)
    since, until = now - timedelta(hours=4), now - timedelta(minutes=10)
    page.fill("[data-iso=since]", since.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("[data-iso=until]", until.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#range-form button[type=submit]")
    page.wait_for_url("**since=*")
    query = params(page.url)
    assert query["since"] == [since.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert query["until"] == [until.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert "range" not in query
    assert shown(page) == [events[1], events[2], events[3]]


def test_it_reads_the_absolute_range_in_the_browser_time_zone(browser, asgi_server, transactional_db, events):
    page = open_page(browser, asgi_server, timezone_id="Asia/Kolkata")
    page.goto(page.server + "/events/")
    page.evaluate("localStorage.removeItem('eventfeed.tz')")
    page.reload()
    page.click("[data-toggle=range-form]")
    page.fill("[data-iso=since]", "2026-03-01T10:30:00")
    page.fill("[data-iso=until]", "2026-03-01T12:00:00")
    page.click("#range-form button[type=submit]")
    page.wait_for_url("**since=*")
    assert params(page.url)["since"] == ["2026-03-01T05:00:00Z"]
    assert params(page.url)["until"] == ["2026-03-01T06:30:00Z"]
    assert page.locator(".empty-state").is_visible()
    assert page.errors == []
    page.context.close()


def test_it_shows_the_same_feed_when_the_url_is_pasted_into_a_fresh_page(feed_page, browser, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.locator(f".row[data-id='{events[0]}'] .chip", has_text="k8s-prod").click()
    page.wait_for_url("**any=*")
    page.click("#event-picker summary")
    page.click(".names .ns .pick >> text=prefect.flow-run.*")
    page.wait_for_url("**event=*")
    url, rows = page.url, shown(page)
    assert params(url) == {"any": ["prefect.work-pool.k8s"], "event": ["prefect.flow-run.*"]}
    assert rows == [events[0], events[1], events[3]]
    fresh = open_page(browser, page.server, session=page.session)
    fresh.goto(url)
    assert shown(fresh) == rows
    assert fresh.locator(".pills").inner_text() == page.locator(".pills").inner_text()
    fresh.context.close()


def test_it_filters_by_clicking_a_chip_or_a_resource(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.locator(f".row[data-id='{events[0]}'] .chip", has_text="etl-orders").click()
    page.wait_for_url("**any=prefect.flow.f1")
    assert shown(page) == [events[0], events[3]]
    page.locator(f".row[data-id='{events[3]}'] .res").click()
    page.wait_for_url("**resource=prefect.flow-run.r3")
    assert shown(page) == [events[3]]
    # Anywhere else on the row opens the event: the name's link covers the row, under the chips.
    page.locator(f".row[data-id='{events[3]}'] .related").click(position={"x": 2, "y": 2}, force=True)
    page.wait_for_url(f"**/events/{events[3]}/")


def test_it_loads_older_rows_in_place_with_a_keyset_cursor(feed_page):
    now = datetime.now(timezone.utc)
    raw = [make_event("acme.order.shipped", f"acme.order.{i}", occurred=now - timedelta(seconds=30 + i)) for i in range(57)]
    store(*raw)
    page = feed_page
    page.goto(page.server + "/events/?event=acme.order.*")
    assert len(shown(page)) == 50
    assert page.locator("[data-count]").inner_text() == "50+ events"
    before = page.url
    page.click("[data-load-older]")
    page.locator(".row").nth(56).wait_for()
    assert shown(page) == [e["id"] for e in raw]
    assert page.url == before
    assert page.locator("[data-load-older]").count() == 0
    assert page.locator("[data-count]").inner_text() == "57 events"
    assert page.locator(".row").nth(56).locator(".rel").inner_text().endswith("ago")


def test_it_zooms_by_dragging_across_the_histogram(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/")
    page.locator("#histogram g.bar").first.wait_for(state="attached")
    box = page.locator("#histogram [data-plot]").bounding_box()
    # The plot's right part is the newest 24 h; drag over the last fifth of it (≈ the last 4.6 h).
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.80, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.90, y, steps=5)
    assert page.locator("#histogram .selection").get_attribute("visibility") == "visible"
    page.mouse.move(box["x"] + box["width"] - 2, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**since=*")
    query = params(page.url)
    since = datetime.fromisoformat(query["since"][0].replace("Z", "+00:00"))
    until = datetime.fromisoformat(query["until"][0].replace("Z", "+00:00"))
    assert "range" not in query
    assert timedelta(hours=3) < until - since < timedelta(hours=6)
    assert shown(page) == events[:4]  # the pod event, 6 h old, is left out
    assert page.locator(".range-form").is_visible()


def test_it_shows_a_tooltip_over_the_histogram(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/?range=1h")
    bar = page.locator("#histogram g.bar:has(rect)").last
    bar.wait_for(state="attached")
    bar.hover()
    tip = page.locator("#histogram [data-tip]")
    tip.wait_for()
    assert re.match(r"1 event · \w+ \d+, \d\d:\d\d – \d\d:\d\d", tip.inner_text())
    assert page.locator("#histogram .tick").count() >= 4


def test_it_shows_times_in_local_time_or_utc_and_remembers_the_choice(browser, asgi_server, transactional_db, events):
    page = open_page(browser, asgi_server, timezone_id="America/New_York")
    page.goto(page.server + "/events/")
    when = page.locator(f".row[data-id='{events[3]}'] .when")
    occurred = datetime.fromisoformat(when.get_attribute("datetime"))
    assert when.locator(".rel").inner_text() == "3 h ago"
    local = occurred.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert when.get_attribute("title").startswith(local.strftime("%Y-%m-%d %H:%M:%S"))
    assert "America/New_York" in when.get_attribute("title")
    page.click("[data-tz=utc]")
    assert when.get_attribute("title") == occurred.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    page.reload()
    assert page.locator("[data-tz=utc]").get_attribute("aria-pressed") == "true"
    assert page.locator(f".row[data-id='{events[3]}'] .when").get_attribute("title").endswith(" UTC")
    assert page.errors == []
    page.context.close()


def test_it_explains_an_empty_feed_and_widens_it_in_one_click(feed_page, events):
    page = feed_page
    page.goto(page.server + "/events/?range=1h&event=prefect.kubernetes.*")
    assert page.locator(".empty-state").is_visible()
    assert "last hour" in page.locator(".empty-state").inner_text()
    page.click(".empty-state .widen a:has-text('Last 24 hours')")
    page.wait_for_url("**range=24h*")
    assert shown(page) == [events[4]]


def test_it_names_the_bad_field_of_an_invalid_filter(feed_page):
    page = feed_page
    response = page.goto(page.server + "/events/?since=yesterday")
    assert response.status == 400
    assert "From (since)" in page.locator(".form-errors").inner_text()
    page.click(".form-errors a:has-text('Remove it')")
    page.wait_for_url(lambda url: "since" not in url)
    assert page.locator(".form-errors").count() == 0


def test_it_looks_right_at_1280_px_and_on_a_phone(browser, asgi_server, transactional_db, events):
    os.makedirs(SHOTS, exist_ok=True)
    for width in (1280, 390):
        page = open_page(browser, asgi_server, width=width)
        page.goto(page.server + "/events/")
        page.locator("#histogram g.bar").first.wait_for(state="attached")
        page.screenshot(path=f"{SHOTS}/feed-{width}.png", full_page=True)
        # Nothing sticks out sideways on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.goto(page.server + "/events/?range=7d&event=prefect.flow-run.*&related=flow:prefect.flow.f1")
        page.click("#event-picker summary")
        page.locator(".names .ns").first.wait_for()
        page.screenshot(path=f"{SHOTS}/feed-{width}-picker.png")
        page.goto(page.server + "/events/?range=15m&any=prefect.flow.none")
        page.screenshot(path=f"{SHOTS}/feed-{width}-empty.png")
        assert page.errors == []
        page.context.close()
