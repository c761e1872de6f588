"""The event page shows numbers exactly as the event holds them: an integer past 2^53 is not
rounded in the payload tree, in the raw JSON or in what "Copy payload" writes."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.conftest import make_event, store

BIG = 12345678901234567890123


def test_it_shows_big_integers_exactly(open_page, look):
    event = make_event("acme.ledger.posted", "acme.ledger.1",
                       payload={"big": BIG, "negative": -BIG, "small": 42, "ratio": 0.25, "list": [BIG, "x"]})
    store(event)
    page = open_page(**look)
    page.goto(f"{page.server}/events/{event['id']}/")
    tree = page.locator("#payload-tree")
    assert str(BIG) in tree.inner_text()
    assert f"-{BIG}" in tree.inner_text()
    assert "e+22" not in tree.inner_text()
    page.click("#raw-json summary")
    expect(page.locator("#raw-json-code")).to_contain_text('"big"')
    raw = page.locator("#raw-json-code").inner_text()
    assert f'"big": {BIG}' in raw and f'"negative": -{BIG}' in raw and '"ratio": 0.25' in raw
    assert "e+22" not in raw
