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


def test_it_words_every_relative_time_as_the_server_does(open_page):
    """The page's `ago` (lib/times.js, shared by every page) against the server's `ago` filter,
    at each unit's edges."""
    from unittest import mock

    from django.utils import timezone as django_timezone

    from eventfeed.events.templatetags.eventfeed import ago

    deltas = [-5, 0, 1, 59, 60, 61, 119, 3599, 3600, 3601, 86399, 86400, 86401, 172800, 864000]
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    with mock.patch.object(django_timezone, "now", return_value=now):
        server = [ago(now - timedelta(seconds=s)) for s in deltas]
    page = open_page()
    page.goto(f"{page.server}/automations/")
    module = page.evaluate("document.querySelector('script[type=module][src*=page]').src")
    browser = page.evaluate(
        """async ([module, now, deltas]) => {
            const { ago } = await import(new URL("lib/times.js", module));
            return deltas.map((s) => ago(new Date(now - s * 1000), now));
        }""",
        [module, now.timestamp() * 1000, deltas],
    )
    assert browser == server
