"""The automation editor's actions form in chromium: a form per action kind kept in sync with the
Actions JSON; a refused save shows each problem where it is (the field, the action, the JSON
tab), and the preview says what to fix; webhook header secrets stay masked and are kept."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from eventfeed.automations import store
from tests.browser.test_pages_a11y_browser import axe_violations

TRIGGER = {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"]}


def actions_json(page) -> list:
    return json.loads(page.locator("#id_actions").input_value())


def test_it_edits_each_action_in_a_form_that_stays_in_sync_with_the_json(signed_in_page):
    page = signed_in_page
    page.goto(f"{page.server}/automations/new")
    cards = page.locator("#action-list .au-action")
    expect(cards).to_have_count(1)  # the default notification
    assert actions_json(page)[0]["type"] == "send-notification"

    cards.first.locator("[data-key=type]").select_option("call-webhook")
    card = cards.first
    card.locator("[data-key=url]").fill("https://hooks.example.com/in")
    card.locator("[data-key=headers]").fill("Authorization: Bearer abc\nX-Team: data")
    card.locator("[data-key=method]").select_option("PUT")
    action = actions_json(page)[0]
    assert (action["type"], action["url"], action["method"]) == ("call-webhook", "https://hooks.example.com/in", "PUT")
    assert action["headers"] == {"Authorization": "Bearer abc", "X-Team": "data"}

    # The JSON tab edits the same list; back on the form, the fields show it.
    page.get_by_role("tab", name="Actions JSON").click()
    page.fill("#id_actions", json.dumps([{**action, "timeout": 30}, {"type": "pause-automation", "source": "inferred"}]))
    page.get_by_role("tab", name="Actions form").click()
    expect(cards).to_have_count(2)
    expect(cards.first.locator("[data-key=timeout]")).to_have_value("30")
    expect(cards.nth(1).locator("[data-key=source]")).to_have_value("inferred")

    page.locator(".au-add-action[data-kind=do-nothing]").click()
    expect(cards).to_have_count(3)
    cards.first.get_by_role("button", name="Remove action 1").click()
    assert [a["type"] for a in actions_json(page)] == ["pause-automation", "do-nothing"]


def test_it_shows_a_refused_saves_problems_where_they_are(open_page, look):
    page = open_page(**look)
    page.goto(f"{page.server}/automations/new")
    page.fill("#id_name", "Broken on purpose")
    card = page.locator("#action-list .au-action").first
    card.locator("[data-key=type]").select_option("call-webhook")
    card.locator("[data-key=url]").fill("ftp://files.example.com/")
    page.fill("[data-field=threshold]", "0")
    page.get_by_role("button", name="Save automation").click()
    page.wait_for_load_state()
    # The trigger's problem is at its field too.
    expect(page.locator("[data-field=threshold] + .au-error")).to_contain_text("must be a whole number of at least 1")
    page.fill("[data-field=threshold]", "1")
    expect(page.locator("[data-field=threshold] + .au-error")).to_have_count(0)

    # The URL's problem is at the URL field of action 1, which is marked; the summary points there.
    card = page.locator("#action-list .au-action").first
    expect(card.locator("[data-error-for='actions[0].url']")).to_contain_text("is required: an http:// or https:// URL")
    expect(card).to_have_class("au-action has-error")
    expect(page.locator("#actions-errors")).to_contain_text("1 problem in the actions, each shown at its field")
    assert not axe_violations(page), axe_violations(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= look["width"]

    # JSON that does not read: each editor opens on its JSON tab with the message; the preview says what to fix.
    page.locator("#trigger-tabs").get_by_role("tab", name="JSON").click()
    page.fill("#id_trigger", "{")
    page.get_by_role("tab", name="Actions JSON").click()
    page.fill("#id_actions", "[{")
    page.get_by_role("button", name="Save automation").click()
    page.wait_for_load_state()
    expect(page.get_by_role("tab", name="Actions JSON")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#actions-json-error")).to_contain_text("The actions JSON is not valid JSON")
    expect(page.locator("#trigger-tabs").get_by_role("tab", name="JSON")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#id_trigger")).to_be_visible()
    expect(page.locator("#preview-summary")).to_contain_text("fix it in the trigger's JSON tab")
    assert "Checking" not in page.locator("#preview-summary").inner_text()


def test_it_masks_webhook_header_secrets_and_keeps_them_on_save(signed_in_page):
    page = signed_in_page
    hook = {"type": "call-webhook", "url": "https://hooks.example.com/x", "headers": {"Authorization": "Bearer s3cret"}}
    automation = store.save_automation(store.parse_automation({"name": "Hooked", "trigger": TRIGGER, "actions": [hook]}))
    page.goto(f"{page.server}/automations/{automation.id}/")
    assert "s3cret" not in page.content()
    page.goto(f"{page.server}/automations/{automation.id}/edit")
    assert "s3cret" not in page.content()
    expect(page.locator("#action-list [data-key=headers]")).to_have_value("Authorization: ••••••")
    page.locator("#action-list [data-key=payload]").fill('{"hello": 1}')
    page.get_by_role("button", name="Save automation").click()
    page.wait_for_url(f"**/automations/{automation.id}/")
    automation.refresh_from_db()
    assert automation.actions[0]["headers"] == {"Authorization": "Bearer s3cret"}
    assert automation.actions[0]["payload"] == '{"hello": 1}'
