"""Every page, at desktop and phone sizes, in light and dark: no serious or critical axe-core
violation, and no sideways scrolling on a phone. axe-core is vendored under
tests/browser/vendor/ (from the npm registry), never fetched at run time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import make_event, store

AXE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text()

FLOW_RUN = "prefect.flow-run.a11y"
RELATED = [{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow", "prefect.resource.name": "etl"},
           {"prefect.resource.id": "prefect.deployment.nightly", "prefect.resource.role": "deployment",
            "prefect.resource.name": "nightly"},
           {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}]


@pytest.fixture
def stored_events(transactional_db):
    now = datetime.now(timezone.utc)
    events = [make_event(name, FLOW_RUN, related=RELATED, occurred=now - timedelta(minutes=i),
                         payload={"n": i, "big": 12345678901234567890123}, **{"prefect.resource.name": "amber-fox"})
              for i, name in enumerate(["prefect.flow-run.Failed", "prefect.flow-run.Running", "prefect.flow-run.Pending",
                                        "prefect.flow-run.Completed", "acme.order.shipped"] * 4)]
    store(*events)
    return events


def pages(events) -> list[str]:
    return [
        "/events/",
        "/events/?event=prefect.flow-run.*&q=etl",
        f"/events/{events[0]['id']}/",
        "/automations/",
        f"/automations/new?event={events[0]['id']}",
        "/notifications/",
        "/settings/api-keys/",
        "/settings/ingest-problems/",
        "/settings/storage/",
        "/webhooks/",
        "/webhooks/new",
        "/events/00000000-0000-4000-8000-000000000000/",  # the app's own 404 page
    ]


def axe_violations(page) -> list[str]:
    # Through the DevTools protocol, which the site's CSP (no inline scripts) does not govern.
    page.evaluate(AXE)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]


def test_it_has_no_serious_accessibility_violations_and_no_sideways_scroll(open_page, look, stored_events):
    page = open_page(**look)
    problems = {}
    for path in pages(stored_events):
        page.goto(page.server + path)
        page.wait_for_load_state("networkidle")
        found = axe_violations(page)
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > look["width"]:
            wide = page.evaluate("""(w) => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > w + 1 && e.parentElement.getBoundingClientRect().right <= w + 1).slice(0, 6).map(e => e.tagName.toLowerCase() + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ':' + Math.round(e.getBoundingClientRect().right))""", look["width"])
            found.append(f"scrolls sideways: {width} px wide: {wide}")
        if found:
            problems[path] = found
    assert not problems, "\n".join(f"{path}: {item}" for path, items in problems.items() for item in items)
