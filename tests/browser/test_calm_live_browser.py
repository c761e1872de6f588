"""Calm live updates: pointing at, focusing or selecting in the list holds new rows behind a
sticky "N new — show" notice, the histogram and the total advance live, and a flood of 1,000
events a second keeps the page responsive."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

from tests.browser.test_live_browser import open_feed, post, row  # noqa: F401 (a fixture)
from tests.conftest import make_event, store


def some_rows(n=60):
    now = datetime.now(timezone.utc)
    store(*[make_event(f"t.old.{i}", occurred=now - timedelta(minutes=i + 1)) for i in range(n)])


def test_it_holds_new_rows_while_the_pointer_is_on_the_list(open_page, look, post):
    some_rows(5)
    page = open_page(**look)
    open_feed(page)
    first = page.locator(".row").first
    if look["width"] > 500:
        first.hover()
    else:
        first.locator(".name").focus()  # a phone has no pointer: focus holds too
    # The histogram and the total load after the page is live; on a loaded machine they may
    # still be arriving, and their layout is not what this test is about.
    page.wait_for_selector("#histogram svg")
    page.wait_for_function("document.querySelector('[data-total]').textContent.trim() !== ''")
    before = first.bounding_box()
    events = post(make_event("t.held.1"), make_event("t.held.2"))
    page.locator("[data-new-events]", has_text="2 new — show").wait_for(timeout=15_000)
    assert row(page, events[0]).count() == 0
    assert page.locator(".row").first.bounding_box() == before  # nothing moved under the pointer
    page.click("[data-new-events]")
    for event in events:
        row(page, event).wait_for(timeout=10_000)
    # Focus lands on the newest row, not on <body>.
    assert page.evaluate("document.activeElement.closest('.row') !== null")


def test_it_lets_held_rows_in_when_the_pointer_leaves(open_page, post):
    some_rows(5)
    page = open_page()
    open_feed(page)
    page.locator(".row").first.hover()
    [event] = post(make_event("t.after-leave"))
    page.locator("[data-new-events]", has_text="1 new — show").wait_for(timeout=15_000)
    page.mouse.move(5, 5)
    row(page, event).wait_for(timeout=10_000)
    assert page.locator("[data-new-events]").is_hidden()


def test_it_keeps_the_new_rows_notice_in_view_while_scrolled(open_page, look, post):
    some_rows()
    page = open_page(**look)
    open_feed(page)
    page.evaluate("scrollTo(0, 1500)")
    page.wait_for_function("scrollY > 1000")
    [event] = post(make_event("t.while-scrolled"))
    notice = page.locator("[data-new-events]", has_text="1 new — show")
    notice.wait_for(timeout=15_000)
    box = notice.bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= look["height"]  # in view, below the top edge
    assert row(page, event).count() == 0


def test_it_advances_the_total_and_the_histogram_live(open_page, look, post):
    some_rows(3)
    page = open_page(**look)
    open_feed(page, "?range=1h")
    total = page.locator("[data-total]")
    page.wait_for_function("document.querySelector('[data-total]').textContent.includes('in this range')")
    assert total.inner_text() == "3 events in this range"
    assert page.locator("#histogram .layer.bad").count() == 0
    post(make_event("prefect.flow-run.Failed"), make_event("prefect.flow-run.Crashed"))
    page.wait_for_function("document.querySelector('[data-total]').textContent.startsWith('5 ')", timeout=5_000)
    page.locator("#histogram .layer.bad").first.wait_for(state="attached", timeout=3_000)


def test_it_stays_responsive_under_a_flood_of_a_thousand_events_a_second(open_page, post):
    page = open_page()
    open_feed(page)
    page.evaluate("""() => {
      window.__frames = [];
      let last = performance.now();
      const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    }""")
    started = time.monotonic()
    for second in range(2):
        for batch in range(10):
            post(*[make_event(f"t.flood.{second}.{batch}.{i}") for i in range(100)])
        time.sleep(max(0.0, (second + 1) - (time.monotonic() - started)))
    page.wait_for_function("document.querySelectorAll('.row').length >= 450", timeout=15_000)
    page.wait_for_timeout(1_000)
    frames = page.evaluate("window.__frames")
    rows = page.locator(".row").count()
    assert rows <= 500  # the DOM stays bounded
    # Frame budget: the page keeps drawing while 2,000 rows arrive. Bounds are loose for a
    # machine shared by several test runs; without the budget the worst frame took seconds.
    frames.sort()
    assert frames[len(frames) // 2] < 100, frames[-10:]
    assert frames[int(len(frames) * 0.9)] < 500, frames[-10:]
    assert page.locator("[data-load-older]").count() == 1


def test_it_zooms_the_histogram_from_the_keyboard(open_page, look):
    some_rows(10)
    page = open_page(**look)
    page.goto(page.server + "/events/?range=1h")
    page.locator("#histogram g.bar").first.wait_for(state="attached")
    page.focus("#histogram [data-plot]")
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    tip = page.locator("#histogram [data-tip]")
    tip.wait_for()
    assert re.match(r"\d+ events? · ", tip.inner_text())
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"since=.*until="))


def test_it_switches_the_histogram_to_a_log_scale(open_page):
    now = datetime.now(timezone.utc)
    store(*[make_event("t.spike", occurred=now - timedelta(minutes=5)) for _ in range(150)],
          make_event("t.lonely", occurred=now - timedelta(minutes=40)))
    page = open_page()
    page.goto(page.server + "/events/?range=1h")
    page.locator("#histogram g.bar").first.wait_for(state="attached")
    page.click("[data-scale=log]")
    assert page.locator("[data-scale=log]").get_attribute("aria-pressed") == "true"
    ticks = page.eval_on_selector_all("#histogram .tick", "ts => ts.map(t => t.textContent)")
    assert "10" in ticks and "100" in ticks
    # The lonely event's bar is at least a tenth of the spike's on a log scale.
    heights = page.eval_on_selector_all("#histogram g.bar:has(rect)", "gs => gs.map(g => g.getBBox().height)")
    assert min(heights) > max(heights) / 10
