"""The facets beside the feed in chromium, at desktop and phone sizes, light and dark: they load
after the first paint, include and exclude become the feed's filter pills, the keyboard reaches
them, and axe finds nothing serious."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import make_event, store

from .test_pages_a11y_browser import axe_violations

FLOW = {"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}
PROD = {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"}
DEV = {"prefect.resource.id": "prefect.tag.dev", "prefect.resource.role": "tag"}


@pytest.fixture
def tagged_runs(transactional_db):
    """8 flow-run events tagged prod, 4 tagged dev, 4 orders without tags."""
    now = datetime.now(timezone.utc)
    events = [make_event(f"prefect.flow-run.{'Failed' if i % 2 else 'Completed'}", f"prefect.flow-run.r{i}",
                         related=[FLOW, PROD if i < 8 else DEV], occurred=now - timedelta(minutes=i + 1)) for i in range(12)]
    events += [make_event("acme.order.shipped", f"acme.order.{i}", occurred=now - timedelta(minutes=20 + i)) for i in range(4)]
    store(*events)
    return events


def rows(page) -> int:
    return page.locator("#feed-rows .row").count()


def facets_loaded(page) -> None:
    page.wait_for_selector("#facets[data-loaded=true]")
    box = page.locator("[data-facets-box]")
    if not box.evaluate("d => d.open"):
        # A phone shows the facets closed, one line above the list.
        assert page.viewport_size["width"] < 760
        page.locator("[data-facets-box] > summary").click()


def value(page, facet: str, label: str):
    section = page.locator("#facets section.facet", has=page.locator("h3", has_text=facet))
    return section.locator("li.facet-value", has=page.locator(".fv", has_text=label))


def test_it_includes_and_excludes_from_the_facets(open_page, look, tagged_runs):
    page = open_page(**look)
    page.goto(page.server + "/events/")
    facets_loaded(page)
    flow_runs = value(page, "Event", "prefect.flow-run.*")
    assert flow_runs.locator(".fc").inner_text() == "12"
    assert value(page, "Tag", "dev").locator(".fc").inner_text() == "4"
    if look["width"] < 760:
        # Closed by default on a phone, and placed above the list.
        assert page.locator("#facets").bounding_box()["y"] < page.locator("section.list").bounding_box()["y"]

    flow_runs.locator("a.fin").click()
    page.wait_for_function("() => new URL(location.href).searchParams.get('event') === 'prefect.flow-run.*'")
    facets_loaded(page)
    assert rows(page) == 12
    assert page.locator(".pill-event .v").inner_text() == "prefect.flow-run.*"

    # From the keyboard: focus the exclude link and press Enter.
    exclude = value(page, "Tag", "dev").locator("a.fout")
    assert exclude.get_attribute("aria-label") == "Exclude tag dev"
    exclude.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URL(location.href).searchParams.get('related') === '!tag:prefect.tag.dev'")
    facets_loaded(page)
    assert rows(page) == 8
    assert parse_qs(urlparse(page.url).query) == {"event": ["prefect.flow-run.*"], "related": ["!tag:prefect.tag.dev"]}
    pill = page.locator(".pill-related")
    assert pill.locator(".k").inner_text() == "Related not" and pill.locator(".v").inner_text() == "!tag:prefect.tag.dev".lstrip("!")
    assert "8 events" in page.locator("#facets .facets-total").inner_text()
    assert page.locator("[data-total]").inner_text() == "8 events in this range"
    assert value(page, "Tag", "dev").count() == 0  # left out, so no longer counted

    found = axe_violations(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert not found, found
    assert width <= look["width"], f"scrolls sideways: {width} px"
