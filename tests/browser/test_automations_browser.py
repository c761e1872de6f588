"""From an event to a live automation, in a real browser against a real Daphne server."""

from __future__ import annotations

import json
import os
import re
import urllib.request
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from eventfeed.automations.models import Automation
from eventfeed.events.models import ApiKey
from tests.conftest import make_event, store

SHOTS = "/tmp/shots"


def shot(page, name: str) -> None:
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def post_events(server: str, key: str, events: list[dict]) -> None:
    request = urllib.request.Request(
        server + "/api/events", data=json.dumps(events).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_it_builds_an_automation_from_an_event_and_notifies_live(signed_in_page):
    page, server = signed_in_page, signed_in_page.server
    now = datetime.now(timezone.utc)
    flow = [{"prefect.resource.id": "prefect.flow.etl", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}]
    older = [make_event("prefect.flow-run.Failed", f"prefect.flow-run.old{i}", occurred=now - timedelta(hours=i + 1), related=flow)
             for i in range(3)]
    event = make_event("prefect.flow-run.Failed", "prefect.flow-run.aaa", occurred=now - timedelta(minutes=5), related=flow)
    store(*older, event)
    _, key = ApiKey.create("browser test")

    page.goto(f"{server}/events/{event['id']}/")
    page.locator(".ev-menu summary").click()
    page.get_by_role("menuitem", name="Automate").click()
    page.wait_for_url(re.compile(r"/automations/new\?event="))
    # From a finished run the default fires for every run of its flow, not for this run only.
    expect(page.locator("#preview-summary")).to_contain_text("4 stored events match; it would have fired 4 times")
    page.get_by_label(re.compile("Only this flow run")).check()
    expect(page.locator("#trigger-sentence")).to_contain_text("from prefect.flow-run.aaa")
    expect(page.locator("#preview-summary")).to_contain_text("1 stored event matches; it would have fired 1 time")

    page.get_by_label(re.compile(r"Every flow run \(prefect\.flow-run\.\*\)")).check()
    expect(page.locator("#trigger-sentence")).to_contain_text("from prefect.flow-run.*")
    expect(page.locator("#preview-summary")).to_contain_text("4 stored events match; it would have fired 4 times")
    expect(page.locator("#preview-firings li")).to_have_count(4)
    shot(page, "automation-new-from-event")
    assert json.loads(page.locator("#id_trigger").input_value())["match"] == {"prefect.resource.id": "prefect.flow-run.*"}

    page.fill("#id_name", "Any flow run failed")
    page.get_by_role("button", name="Save automation").click()
    page.wait_for_url(re.compile(r"/automations/[0-9a-f-]{36}/$"))
    automation = Automation.objects.get()
    assert automation.trigger["for_each"] == ["prefect.resource.id"]

    page.goto(f"{server}/events/")
    page.wait_for_function("document.documentElement.dataset.notifications === 'connected'")
    post_events(server, key, [make_event("prefect.flow-run.Failed", "prefect.flow-run.bbb")])
    toast = page.locator(".toast").first
    expect(toast).to_contain_text("Any flow run failed: prefect.flow-run.Failed", timeout=15_000)
    # Headed by the automation's name and the time as every page writes it (24-hour), no ISO stamp.
    assert toast.locator(".toast-head strong").inner_text() == "Any flow run failed"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", toast.locator(".toast-head time").inner_text())
    assert "T" not in toast.locator(".toast-head time").inner_text()
    shot(page, "automation-toast")

    for _ in range(20):
        page.goto(f"{server}/events/?event=prefect.automation.triggered")
        if page.locator(".row").count():
            break
        page.wait_for_timeout(500)
    expect(page.locator(".row").first).to_contain_text("prefect.automation.triggered")
    shot(page, "automation-triggered-in-feed")

    page.goto(f"{server}/automations/{automation.id}/")
    expect(page.locator(".au-history tbody tr")).to_have_count(1)
    expect(page.locator(".au-run").first).to_contain_text("send-notification: succeeded")
    shot(page, "automation-page")


def test_it_keeps_the_form_and_the_json_editor_in_sync_and_names_bad_fields(signed_in_page):
    page, server = signed_in_page, signed_in_page.server
    page.goto(f"{server}/automations/new")
    expect(page.locator("#trigger-sentence")).to_contain_text("Fires every time any event occurs.")

    page.fill("[data-field=expect]", "acme.order.*")
    page.fill("[data-field=threshold]", "3")
    page.fill("[data-field=within]", "60")
    expect(page.locator("#trigger-sentence")).to_contain_text("Fires when 3 acme.order.* events occur within 1 minute.")
    page.locator("#trigger-tabs").get_by_role("tab", name="JSON").click()
    trigger = json.loads(page.locator("#id_trigger").input_value())
    assert (trigger["expect"], trigger["threshold"], trigger["within"]) == (["acme.order.*"], 3, 60)

    page.fill("#id_trigger", json.dumps({**trigger, "within": -5}))
    expect(page.locator("#trigger-errors")).to_contain_text("trigger.within must be 0 or more seconds")
    page.fill("#id_trigger", "{not json")
    expect(page.locator("#trigger-errors")).to_contain_text("is not valid JSON")
    page.fill("#id_trigger", json.dumps({**trigger, "posture": "Proactive", "within": 120}))
    expect(page.locator("#trigger-errors")).to_be_hidden()
    page.locator("#trigger-tabs").get_by_role("tab", name="Form").click()
    expect(page.locator("[data-field=posture]")).to_have_value("Proactive")
    expect(page.locator("[data-field=within]")).to_have_value("120")
    expect(page.locator("#trigger-sentence")).to_contain_text("Fires if fewer than 3 acme.order.* events occur within 2 minutes.")
    shot(page, "automation-editor-sync")
