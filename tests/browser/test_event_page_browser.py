"""The event page in chromium: from the feed to an event, its payload tree, copying, following links."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import make_event, store
from tests.test_views_event_detail import FLOW_RUN, RELATED

SHOTS = Path("/tmp/shots")


def a_failed_run() -> tuple[dict, dict]:
    """A Running event and the Failed event that follows it, on one flow run."""
    now = datetime.now(timezone.utc)
    related = [*RELATED, {"prefect.resource.id": "prefect.tag.<script>alert(1)</script>", "prefect.resource.role": "tag"}]
    labels = {"prefect.resource.name": "crimson-fox", "prefect.state-type": "FAILED", "evil": "<script>alert(1)</script>",
              "rtl": "שלום עולם", "long": "B" * 400}
    running = make_event("prefect.flow-run.Running", FLOW_RUN, related=related, occurred=now - timedelta(minutes=6),
                         payload={"validated_state": {"type": "RUNNING", "name": "Running"}}, **labels)
    failed = make_event(
        "prefect.flow-run.Failed", FLOW_RUN, related=related, occurred=now - timedelta(minutes=4), follows=running["id"],
        payload={
            "intended": {"from": "RUNNING", "to": "FAILED"},
            "validated_state": {"type": "FAILED", "name": "Failed",
                                "message": "Traceback (most recent call last):\n" + "  File 'etl.py'\n" * 12 + "ValueError: boom"},
            "rows": [{"i": i, "status": "ok" if i % 7 else "retry"} for i in range(150)],
            "rtl": "مرحبا بالعالم",
        },
        **labels,
    )
    store(running, failed)
    return running, failed


def watch_for_alerts(page) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_it_opens_an_event_from_the_feed_and_explores_it(signed_in_page):
    page = signed_in_page
    running, failed = a_failed_run()
    dialogs = watch_for_alerts(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.server)

    page.goto(page.server + "/events/")
    page.locator(f'#feed-rows a[href="/events/{failed["id"]}/"]').first.click()
    page.wait_for_url(f"**/events/{failed['id']}/")
    assert page.locator("h1.ev-title").inner_text() == "Flow run · Failed"
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "event-page-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "event-page-390.png"), full_page=True)
    # Nothing, however long or unbroken, widens a phone's page.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.set_viewport_size({"width": 1280, "height": 900})

    # The payload tree: the 150-row array starts closed, and opens on a click.
    rows = page.locator(".jt-node", has=page.locator(":scope > .jt-line > .jt-key", has_text="rows")).first
    assert rows.get_attribute("aria-expanded") == "false"
    rows.locator(":scope > .jt-line > .jt-toggle").click()
    assert rows.get_attribute("aria-expanded") == "true"
    assert rows.locator(":scope > .jt > .jt-node").count() == 100
    rows.locator(":scope > .jt > .jt-rest button").click()
    assert rows.locator(":scope > .jt > .jt-node").count() == 150
    # A long string folds, and unfolds.
    message = page.locator(".jt-node", has=page.locator(":scope > .jt-line > .jt-key", has_text="message")).first
    assert "ValueError: boom" not in message.inner_text()
    message.locator(".jt-more").click()
    assert "ValueError: boom" in message.inner_text()

    # Copy the id.
    page.locator("button[aria-label='Copy event ID']").click()
    assert page.evaluate("navigator.clipboard.readText()") == failed["id"]
    page.locator(".ev-toast.is-shown").wait_for()

    # Follow the `follows` link to the Running event...
    page.locator("#chain a.ev-link-card").first.click()
    page.wait_for_url(f"**/events/{running['id']}/")
    assert page.locator("h1.ev-title").inner_text() == "Flow run · Running"
    # ...which lists the Failed event as following it.
    assert page.locator(f'#chain a[href="/events/{failed["id"]}/"]').count() == 1

    # And a related resource leads to the feed filtered to it.
    page.locator("#related a.ev-related-name", has_text="k8s-prod").click()
    page.wait_for_url("**/events/?any=prefect.work-pool.cc33")
    assert page.locator(f'#feed-rows a[href="/events/{failed["id"]}/"]').count() >= 1

    assert dialogs == [], "no string from the event ran as script"


def test_it_copies_the_link_and_the_whole_payload_from_the_menu(signed_in_page):
    page = signed_in_page
    _, failed = a_failed_run()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=page.server)
    page.goto(page.server + f"/events/{failed['id']}/")

    page.locator("summary[aria-label='Event actions']").click()
    page.get_by_role("menuitem", name="Copy link").click()
    assert page.evaluate("navigator.clipboard.readText()") == page.server + f"/events/{failed['id']}/"
    assert page.locator("details.ev-menu").get_attribute("open") is None

    page.locator("button[data-copy-json=payload]").click()
    assert page.evaluate("navigator.clipboard.readText().then(JSON.parse)") == failed["payload"]

    with page.expect_download() as download:
        page.locator("summary[aria-label='Event actions']").click()
        page.get_by_role("menuitem", name="Download JSON").click()
    assert download.value.suggested_filename == f"event-{failed['id']}.json"

    page.locator("#raw-json summary").click()
    expect(page.locator("#raw-json-code")).to_contain_text(f'"id": "{failed["id"]}"')


def test_it_renders_a_one_megabyte_payload_without_freezing(signed_in_page):
    page = signed_in_page
    payload = {"log": "x" * 300_000, "rows": [{"i": i, "name": f"row-{i}", "tags": ["a", "b"]} for i in range(15_000)]}
    event = make_event("acme.export.finished", "acme.export.1", payload=payload)
    store(event)
    start = time.monotonic()
    page.goto(page.server + f"/events/{event['id']}/")
    page.locator(".jt-node").first.wait_for()
    assert time.monotonic() - start < 5
    # Big subtrees start closed: a handful of nodes, not 60,000.
    assert page.locator(".jt-node").count() < 50
    page.locator("[data-tree=expand]").click()
    assert page.locator(".jt-node").count() <= 6000
    assert page.evaluate("1 + 1") == 2  # the tab still answers


@pytest.mark.parametrize("path", [f"/events/{uuid.uuid4()}/", "/events/not-an-id/"])
def test_it_shows_the_404_page(signed_in_page, path):
    page = signed_in_page
    response = page.goto(page.server + path)
    assert response.status == 404
    assert page.locator("a", has_text="Back to the feed").is_visible()
    if path.endswith("not-an-id/"):
        assert page.locator("h1").inner_text() == "That is not an event id"
        page.screenshot(path=str(SHOTS / "event-404-1280.png"))
    else:
        assert page.locator("h1").inner_text() == "No event with this id"
