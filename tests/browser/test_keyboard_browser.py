"""The keyboard: a skip link to the events, one Tab stop per row, j/k/Enter, ←/→ inside a row,
`/` to search, `?` for the help sheet, and focus that returns where it came from."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.conftest import make_event, store


def feed_with_rows(open_page, look):
    now = datetime.now(timezone.utc)
    related = [{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow"},
               {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}]
    events = [make_event(f"t.key.{i}", f"acme.thing.{i}", related=related, occurred=now - timedelta(minutes=i))
              for i in range(5)]
    store(*events)
    page = open_page(**look)
    page.goto(page.server + "/events/")
    page.wait_for_selector("[data-live-status][data-state=live]")
    return page, events


def focused_row_id(page):
    return page.evaluate("document.activeElement.closest('.row')?.dataset.id ?? null")


def test_it_reaches_the_first_event_in_two_tabs_and_walks_rows_with_one_stop_each(open_page, look):
    page, events = feed_with_rows(open_page, look)
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert focused_row_id(page) == events[0]["id"]
    page.keyboard.press("Tab")
    assert focused_row_id(page) == events[1]["id"]  # one Tab stop per row


def test_it_moves_with_j_and_k_and_opens_with_enter(open_page, look):
    page, events = feed_with_rows(open_page, look)
    page.keyboard.press("j")
    assert focused_row_id(page) == events[0]["id"]
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert focused_row_id(page) == events[1]["id"]
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.classList.contains('res')")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/events/{events[1]['id']}/")


def test_it_shows_the_help_sheet_and_returns_focus(open_page, look):
    page, events = feed_with_rows(open_page, look)
    page.keyboard.press("j")
    page.keyboard.press("?")
    sheet = page.locator("dialog.help-sheet")
    assert sheet.is_visible() and "Next / previous event" in sheet.inner_text()
    page.keyboard.press("Escape")
    assert not sheet.is_visible()
    assert focused_row_id(page) == events[0]["id"]  # not <body>
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.name") == "q"


def test_it_returns_focus_to_a_picker_closed_with_escape(open_page):
    page, _ = feed_with_rows(open_page, {"width": 1440, "height": 900, "scheme": "light"})
    page.click("#event-picker summary")
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.closest('#event-picker') !== null")
