"""Times in chromium: one 24-hour format, the server's relative wording, and the Local/UTC switch
on every page (the top bar's), remembered across pages."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from tests.conftest import make_event, store

FLOW_RUN = "prefect.flow-run.times"
NAME = {"prefect.resource.name": "timely-run"}


def test_it_shows_the_event_page_in_24_hours_and_follows_the_utc_switch(open_page):
    occurred = datetime(2026, 3, 14, 18, 5, 9, tzinfo=timezone.utc)
    event = make_event("prefect.flow-run.Completed", FLOW_RUN, occurred=occurred, **NAME)
    store(event)
    page = open_page(zone="America/New_York")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{page.server}/events/{event['id']}/")
    absolute = page.locator(".ev-abs").first
    # 18:05:09 UTC is 14:05:09 in New York (EDT): 24-hour, never "2:05:09 PM".
    assert absolute.inner_text().startswith("2026-03-14 14:05:09")
    assert not re.search(r"\b(AM|PM)\b", page.locator(".ev").inner_text())
    page.click("[data-tz=utc]")
    assert absolute.inner_text() == "2026-03-14 18:05:09.000 UTC"
    # The choice holds on the next page, the feed, too.
    page.goto(f"{page.server}/events/?range=30d")
    assert page.locator("[data-tz=utc]").get_attribute("aria-pressed") == "true"
    assert errors == []


def test_it_writes_relative_times_as_the_server_does(open_page):
    now = datetime.now(timezone.utc)
    event = make_event("prefect.flow-run.Running", FLOW_RUN, occurred=now - timedelta(minutes=3, seconds=5), **NAME)
    store(event)
    page = open_page()
    page.goto(f"{page.server}/events/{event['id']}/")
    page.wait_for_function("document.querySelector('.ev-rel').textContent.includes('min ago')")
    assert page.locator(".ev-rel").inner_text() == "3 min ago"
    page.goto(f"{page.server}/events/")
    assert page.locator(f".row[data-id='{event['id']}'] .rel").inner_text() == "3 min ago"
