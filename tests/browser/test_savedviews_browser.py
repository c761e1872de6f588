"""Saved views in chromium, at desktop and phone sizes, light and dark: save the feed as it is,
open it again by its URL, pin it as home so that the feed opens on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

from tests.browser.test_pages_a11y_browser import axe_violations
from tests.conftest import make_event, store

FLOW = {"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}


def test_it_saves_a_view_opens_it_by_its_url_and_pins_it_as_home(open_page, look):
    now = datetime.now(timezone.utc)
    failed = make_event("prefect.flow-run.Failed", "prefect.flow-run.a", related=[FLOW], occurred=now - timedelta(minutes=1))
    done = make_event("prefect.flow-run.Completed", "prefect.flow-run.b", related=[FLOW], occurred=now - timedelta(minutes=2))
    store(failed, done)
    page = open_page(**look)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{page.server}/events/?event=prefect.flow-run.Failed&range=7d&hide=related")

    picker = page.locator("#views-picker")
    picker.locator("summary").click()
    page.fill("#sv-name", "Failed runs, this week")
    assert not axe_violations(page), axe_violations(page)
    picker.locator("button", has_text="Save view").click()
    page.wait_for_url("**/events/?event=*")
    assert "Failed runs, this week" in page.locator("#views-picker summary").inner_text()
    assert page.locator(".message").inner_text() == "Saved the view “Failed runs, this week”."

    # The view is a URL: opened afresh, it shows the same feed (filter, range, hidden column).
    href = page.locator(".saved-view .sv-name").get_attribute("href")
    page.goto(page.server + "/events/")
    page.goto(page.server + href)
    assert parse_qs(urlparse(page.url).query) == {"event": ["prefect.flow-run.Failed"], "hide": ["related"], "range": ["7d"]}
    assert page.locator(".row").count() == 1 and page.locator(f".row[data-id='{failed['id']}']").count() == 1
    assert not page.locator(f".row[data-id='{failed['id']}'] .related").is_visible()

    # Pinned as home: the top bar's Feed link (and /) opens on it.
    page.locator("#views-picker summary").click()
    page.locator(".saved-view button", has_text="Pin as home").click()
    page.wait_for_load_state()
    page.goto(page.server + "/events/")
    page.locator(".nav a", has_text="Feed").click()
    page.wait_for_url("**/events/?event=*")
    assert parse_qs(urlparse(page.url).query)["event"] == ["prefect.flow-run.Failed"]
    assert "home" in page.locator("#views-picker summary").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= look["width"]
    assert errors == []
