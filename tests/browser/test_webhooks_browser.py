"""A webhook made from a preset in a real browser receives a request, and its event is in the feed."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

from eventfeed.webhooks.models import Webhook
from tests.browser.test_automations_browser import shot


def send(url: str, body: dict, headers: dict) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_it_creates_a_webhook_from_a_preset_and_its_events_reach_the_feed(signed_in_page):
    page, server = signed_in_page, signed_in_page.server
    page.goto(f"{server}/webhooks/")
    page.get_by_role("link", name="New webhook").click()
    page.wait_for_url(re.compile(r"/webhooks/new"))

    # The CloudEvents preset, then the generic JSON one: each fills a template that works on its
    # sample request, shown by the live preview.
    page.get_by_role("button", name="CloudEvents").click()
    expect(page.locator("#id_verification_kind")).to_have_value("none")
    expect(page.locator("#preview-summary")).to_contain_text("It makes a com.example.object.created event")
    page.get_by_role("button", name="Generic JSON").click()
    expect(page.locator("#id_verification_kind")).to_have_value("shared-secret-header")
    expect(page.locator("#preview-summary")).to_contain_text("It makes a deploy.finished event on ci.pipeline.web")
    secret = page.locator("#id_secret").input_value()
    assert len(secret) >= 24

    # A broken edit is explained before saving.
    template = page.locator("#id_template")
    good = template.input_value()
    template.fill('{"event": "x", "resource": {}}')
    expect(page.locator("#preview-summary")).to_contain_text('resource["prefect.resource.id"] is required')
    template.fill(good)
    expect(page.locator("#preview-summary")).to_contain_text("It makes a deploy.finished event")
    shot(page, "webhook-new-from-preset")

    page.fill("#id_name", "CI pipeline")
    page.get_by_role("button", name="Create webhook").click()
    page.wait_for_url(re.compile(r"/webhooks/[0-9a-f-]{36}/$"))
    url = page.locator("#hook-url").input_value()
    assert url == f"{server}/hooks/{Webhook.objects.get().slug}"

    assert send(url, {"event": "deploy.finished", "resource": "ci.pipeline.web", "status": "ok"}, {"X-Webhook-Secret": secret}) == 204
    page.reload()
    expect(page.locator("tbody tr[data-outcome=stored]")).to_have_count(1)
    shot(page, "webhook-detail")

    page.get_by_role("link", name="Feed", exact=True).click()
    row = page.locator(".row", has_text="deploy.finished")
    expect(row).to_be_visible()
    expect(row).to_contain_text("ci.pipeline.web")
    shot(page, "webhook-event-in-feed")
