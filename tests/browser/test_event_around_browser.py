"""The event page's "Around this event" at desktop and phone sizes, light and dark: times,
names and role labels never overlap, also for events of another day (the time then carries the
date) and long names."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.conftest import make_event, store

FLOW_RUN = "prefect.flow-run.around"


def overlaps(page) -> list[str]:
    """Pairs of boxes in one timeline row that intersect, and anything sticking out of its row."""
    return page.evaluate("""() => {
      const out = [];
      // The text's own box: an element's box stays in its grid column while its text overflows.
      const box = (e) => { const r = document.createRange(); r.selectNodeContents(e); return r.getBoundingClientRect(); };
      const cross = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
      for (const row of document.querySelectorAll('.ev-tl')) {
        const parts = [...row.querySelectorAll('time, .ev-tl-name, .ev-badge, .ev-role-chip')];
        const r = row.getBoundingClientRect();
        for (const [i, a] of parts.entries()) {
          const ba = box(a);
          if (ba.right > r.right + 0.5 || ba.left < r.left - 0.5) out.push(`${a.className || a.tagName} leaves its row: ${row.textContent.trim().slice(0, 60)}`);
          for (const b of parts.slice(i + 1)) if (cross(ba, box(b))) out.push(`${a.className || a.tagName} overlaps ${b.className || b.tagName}: ${row.textContent.trim().replace(/\\s+/g, ' ').slice(0, 80)}`);
        }
      }
      return out;
    }""")


def test_around_this_event_labels_never_overlap_titles(open_page, look):
    days_ago = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    related = [{"prefect.resource.id": FLOW_RUN, "prefect.resource.role": "flow-run-that-was-retried-after-a-crash"}]
    events = [
        make_event("prefect.flow-run.Pending", FLOW_RUN, occurred=days_ago),
        make_event("prefect.flow-run.AwaitingConcurrencySlotAfterAVeryLongWaitInTheQueue", FLOW_RUN, occurred=days_ago + timedelta(seconds=1)),
        make_event("prefect.task-run.Completed", "prefect.task-run.t1", related=related, occurred=days_ago + timedelta(seconds=2)),
        make_event("prefect.flow-run.Completed", FLOW_RUN, occurred=days_ago + timedelta(hours=13, seconds=3)),
    ]
    store(*events)
    page = open_page(**look)
    page.goto(f"{page.server}/events/{events[1]['id']}/")
    page.locator("#around .ev-tl").first.wait_for()
    assert page.locator("#around .ev-tl").count() == 4
    # Another day's time carries its date ("Dec 2, 14:03"), the widest form it takes.
    assert "," in page.locator("#around .ev-tl time").first.inner_text()
    print("DEBUG", page.evaluate("[...document.querySelectorAll('#around .ev-tl')].map(r => [getComputedStyle(r).gridTemplateColumns, r.querySelector('time').getBoundingClientRect().right, r.querySelector('.ev-tl-name').getBoundingClientRect().left, r.querySelector('time').textContent])"))
    assert overlaps(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= look["width"]
