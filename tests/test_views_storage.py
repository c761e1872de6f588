"""The storage page: where the space goes, retention overrides, what goes next."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventfeed.events.models import RetentionOverride
from eventfeed.events.retention import Policy
from tests.conftest import is_postgres, make_event, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored(now):
    store(
        *[make_event("prefect.flow-run.heartbeat", "prefect.flow-run.1", occurred=now - timedelta(minutes=i)) for i in range(5)],
        make_event("acme.audit.export", "acme.report.1", occurred=now - timedelta(days=2)),
        make_event("acme.order.created", "acme.order.1", occurred=now - timedelta(days=9)),
    )


def test_it_sends_anonymous_visitors_to_sign_in(client):
    r = client.get("/settings/storage/")
    assert r.status_code == 302 and "/accounts/login/" in r["Location"]
    assert client.post("/settings/storage/", {"pattern": "a.*", "days": 3}).status_code == 302
    assert not RetentionOverride.objects.exists()


def test_it_shows_days_names_producers_and_what_goes_next(owner_client, stored, settings):
    settings.EVENTFEED_RETENTION_OVERRIDES = {"acme.audit.*": 365}
    r = owner_client.get("/settings/storage/")
    assert r.status_code == 200
    ctx = r.context
    assert ctx["names"][0].name == "prefect.flow-run.heartbeat" and ctx["names"][0].events == 5
    assert {n.name: n.days for n in ctx["names"]}["acme.audit.export"] == 365
    assert ("prefect.flow-run.*", 5, 5 / 7) in ctx["prefixes"]
    assert sum(d.events for d in ctx["days"]) == 7
    # The 9-day-old event is past the default 7 days: the next prune removes it.
    assert ctx["removals"][0].what == "all events" and ctx["removals"][0].when == ctx["now"]
    assert [r["value"] for r in ctx["last_day_resources"]] == ["prefect.flow-run.1"]
    assert [n.name for n in ctx["last_day_names"]] == ["prefect.flow-run.heartbeat"]
    html = r.content.decode()
    assert "at the next prune (overdue)" in html and "acme.audit.*" in html and "environment" in html
    if is_postgres():
        assert ctx["totals"]["bytes"] > 0 and all(d.bytes is not None for d in ctx["days"])


def test_it_adds_changes_and_removes_an_override(owner_client, owner):
    r = owner_client.post("/settings/storage/", {"pattern": "prefect.flow-run.heartbeat", "days": "1"})
    assert r.status_code == 302
    owner_client.post("/settings/storage/", {"pattern": "prefect.flow-run.heartbeat", "days": "2"})
    override = RetentionOverride.objects.get()
    assert (override.days, override.updated_by) == (2, owner)
    assert Policy.current().days_for("prefect.flow-run.heartbeat") == 2
    assert "this page" in owner_client.get("/settings/storage/").content.decode()
    r = owner_client.post(f"/settings/storage/overrides/{override.pk}/delete")
    assert r.status_code == 302 and not RetentionOverride.objects.exists()
    assert owner_client.post("/settings/storage/overrides/999/delete").status_code == 404
    assert owner_client.get(f"/settings/storage/overrides/{override.pk}/delete").status_code == 405


@pytest.mark.parametrize("data, field", [
    ({"pattern": "acme.*.x", "days": "3"}, "pattern"),
    ({"pattern": "*", "days": "3"}, "pattern"),
    ({"pattern": "has space", "days": "3"}, "pattern"),
    ({"pattern": "acme.audit.*", "days": "0"}, "days"),
    ({"pattern": "acme.audit.*", "days": "many"}, "days"),
    ({"pattern": "", "days": "3"}, "pattern"),
])
def test_it_refuses_a_bad_override_naming_the_field(owner_client, data, field):
    r = owner_client.post("/settings/storage/", data)
    assert r.status_code == 400
    assert field in r.context["form"].errors
    assert f"<code>{field}</code>" in r.content.decode()
    assert not RetentionOverride.objects.exists()
