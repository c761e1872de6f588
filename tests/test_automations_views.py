"""Automation pages: list, page, new (from an event), edit, delete, enable/disable, preview."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from eventfeed.automations import engine, store
from eventfeed.automations.models import Automation
from eventfeed.events.wire import wire
from tests.conftest import make_event, store as store_events

TRIGGER = {"match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"]}


@pytest.fixture
def automation(db):
    return store.save_automation(store.parse_automation({"name": "Failures", "trigger": TRIGGER}))


@pytest.mark.parametrize("url", ["/automations/", "/automations/new", "/notifications/"])
def test_it_sends_anonymous_users_to_sign_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_it_refuses_anonymous_changes(client, automation):
    assert client.post(f"/automations/{automation.id}/delete").status_code == 302
    assert client.post("/automations/preview", {}, content_type="application/json").status_code == 302
    assert Automation.objects.filter(pk=automation.pk).exists()


def test_it_lists_automations_with_a_sentence_and_a_switch(owner_client, automation):
    html = owner_client.get("/automations/").content.decode()
    assert "Failures" in html
    assert "Fires every time a prefect.flow-run.Failed event from prefect.flow-run.* occurs." in html
    assert 'name="enabled" checked' in html and "never" in html


def test_it_shows_the_firing_history_with_links(owner_client, automation):
    stored = store_events(make_event("prefect.flow-run.Failed", "prefect.flow-run.1")).stored
    [firing] = engine.evaluate([wire(e) for e in stored])
    html = owner_client.get(f"/automations/{automation.id}/").content.decode()
    assert f"/events/{stored[0].id}/" in html and f"/events/{firing.event_id}/" in html
    assert "It has not fired yet." not in html


def test_it_prefills_a_new_automation_from_an_event(owner_client, db):
    # A running run: Prefect's default, this run and this event.
    event = make_event("prefect.flow-run.Running", "prefect.flow-run.abc", related=[
        {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow", "prefect.resource.name": "etl"}],
        **{"prefect.resource.name": "calm-quail"})
    store_events(event)
    response = owner_client.get(f"/automations/new?event={event['id']}")
    assert response.status_code == 200
    trigger = json.loads(response.context["form"].initial["trigger"])
    assert trigger == {"type": "event", "match": {"prefect.resource.id": "prefect.flow-run.abc"}, "match_related": {},
                       "after": [], "expect": ["prefect.flow-run.Running"], "for_each": [], "posture": "Reactive",
                       "threshold": 1, "within": 0}
    html = response.content.decode()
    assert "Only this flow run, calm-quail (prefect.flow-run.abc)" in html
    assert "Every flow run (prefect.flow-run.*), each counted on its own" in html
    assert "Every flow run of the flow etl" in html
    assert "Any event of this family, prefect.flow-run.*" in html
    assert "does not happen within 5 minutes (Proactive)" in html


@pytest.mark.parametrize("state", ["Completed", "Failed", "Crashed", "Cancelled", "TimedOut"])
def test_it_prefills_a_trigger_that_can_fire_again_from_a_finished_run(owner_client, db, state):
    # A finished run never changes state again: the default is the same event for every run of
    # its deployment (the flow when there is no deployment), each counted on its own.
    related = [{"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow", "prefect.resource.name": "etl"},
               {"prefect.resource.id": "prefect.deployment.d1", "prefect.resource.role": "deployment",
                "prefect.resource.name": "etl/nightly"}]
    for rel, expected in ((related, related[1]), (related[:1], related[0])):
        event = make_event(f"prefect.flow-run.{state}", "prefect.flow-run.abc", related=rel)
        store_events(event)
        response = owner_client.get(f"/automations/new?event={event['id']}")
        trigger = json.loads(response.context["form"].initial["trigger"])
        assert trigger["match"] == {"prefect.resource.id": "prefect.flow-run.*"}
        assert trigger["match_related"] == {k: expected[k] for k in ("prefect.resource.id", "prefect.resource.role")}
        assert trigger["expect"] == [f"prefect.flow-run.{state}"] and trigger["for_each"] == ["prefect.resource.id"]
        checked = f'value="related:{expected["prefect.resource.role"]}:{expected["prefect.resource.id"]}" data-set='
        assert checked in response.content.decode()


def test_it_creates_an_automation_from_the_form(owner_client, db):
    response = owner_client.post("/automations/new", {"name": "New one", "enabled": "on", "trigger": json.dumps(TRIGGER),
                                                      "actions": '[{"type": "do-nothing"}]'})
    automation = Automation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/automations/{automation.id}/"
    assert automation.trigger["expect"] == ["prefect.flow-run.Failed"] and automation.actions == [{"type": "do-nothing"}]


def test_it_shows_errors_that_name_the_field(owner_client, db):
    bad = {**TRIGGER, "threshold": 0}
    response = owner_client.post("/automations/new", {"name": "x", "trigger": json.dumps(bad), "actions": "[{"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "trigger.threshold: must be a whole number of at least 1" in html
    assert "This is not valid JSON: Expecting" in html
    assert not Automation.objects.exists()


def test_it_edits_toggles_and_deletes(owner_client, automation):
    response = owner_client.post(f"/automations/{automation.id}/edit", {"name": "Renamed", "trigger": json.dumps(TRIGGER), "actions": "[]"})
    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.name == "Renamed" and automation.enabled is False  # an unchecked box is off
    response = owner_client.post(f"/automations/{automation.id}/enabled", {"enabled": "on"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"enabled": True}
    assert owner_client.post(f"/automations/{automation.id}/delete").status_code == 302
    assert not Automation.objects.exists()


def test_it_previews_how_often_a_trigger_would_have_fired(owner_client, db):
    now = datetime.now(timezone.utc)
    store_events(*[make_event("prefect.flow-run.Failed", f"prefect.flow-run.{i}", occurred=now - timedelta(hours=h))
                   for i, h in enumerate([1, 2, 3, 30])],
                 make_event("prefect.flow-run.Completed", "prefect.flow-run.9", occurred=now - timedelta(hours=1)))
    body = {"trigger": {**TRIGGER, "threshold": 2, "within": 3 * 3600}, "range": "24h"}
    response = owner_client.post("/automations/preview", body, content_type="application/json")
    data = response.json()
    assert data["errors"] == [] and data["sentence"].startswith("Fires when 2 prefect.flow-run.Failed events from")
    assert (data["preview"]["matched"], data["preview"]["fired"]) == (3, 1)
    [fired] = data["preview"]["timeline"]
    assert fired["kind"] == "triggered" and fired["event"]["event"] == "prefect.flow-run.Failed"
    assert fired["url"] == f"/events/{fired['event']['id']}/"
    week = owner_client.post("/automations/preview", {**body, "range": "7d"}, content_type="application/json").json()
    assert week["preview"]["matched"] == 4


def test_it_previews_a_related_resource_trigger(owner_client, db):
    flow = [{"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"}]
    store_events(make_event("prefect.flow-run.Failed", "prefect.flow-run.1", related=flow),
                 make_event("prefect.flow-run.Failed", "prefect.flow-run.2"))
    trigger = {**TRIGGER, "match_related": {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"},
               "for_each": ["prefect.resource.id"]}
    data = owner_client.post("/automations/preview", {"trigger": trigger}, content_type="application/json").json()
    assert (data["preview"]["matched"], data["preview"]["fired"]) == (1, 1)


def test_it_previews_role_conditions_as_the_live_trigger_counts_them(owner_client, db):
    # A role condition, exact or a glob, on a related resource, and a primary resource that
    # carries a role label of its own: the database pre-selection must not drop any of them.
    flow = [{"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"}]
    store_events(make_event("prefect.flow-run.Failed", "prefect.flow-run.1", related=flow),
                 make_event("prefect.flow-run.Failed", "prefect.flow-run.2", **{"prefect.resource.role": "primary"}),
                 make_event("prefect.flow-run.Failed", "prefect.flow-run.3"))
    for trigger, matched in [
        ({**TRIGGER, "match_related": {"prefect.resource.role": "fl*"}}, 1),
        ({**TRIGGER, "match_related": {"prefect.resource.role": "flow"}}, 1),
        ({**TRIGGER, "match": {"prefect.resource.role": "primary"}}, 1),
    ]:
        data = owner_client.post("/automations/preview", {"trigger": trigger}, content_type="application/json").json()
        assert data["preview"]["matched"] == matched, trigger


def test_it_answers_a_preview_body_that_is_not_an_object_with_400(owner_client, db):
    response = owner_client.post("/automations/preview", [], content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "", "rule": "the body must be a JSON object"}]


def test_it_answers_a_bad_trigger_with_paths(owner_client, db):
    response = owner_client.post("/automations/preview", {"trigger": {"type": "compound", "triggers": [{"within": "x"}]}},
                                 content_type="application/json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "trigger.triggers[0].within"


def test_it_404s_an_unknown_automation(owner_client, db):
    assert owner_client.get("/automations/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert owner_client.get("/automations/nope/").status_code == 404


# -- actions edited in a form: webhook header secrets, problems by path -----------------------------

HOOK = {"type": "call-webhook", "url": "https://hooks.example.com/x", "method": "POST", "payload": "",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer s3cret-token"}, "timeout": 10}


@pytest.fixture
def with_secret(db):
    return store.save_automation(store.parse_automation({"name": "Hooked", "trigger": TRIGGER, "actions": [HOOK]}))


def editor_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="editor-data" type="application/json">') + len('<script id="editor-data" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


def test_it_masks_webhook_header_secrets_on_the_automation_pages(owner_client, with_secret):
    for url in (f"/automations/{with_secret.id}/", f"/automations/{with_secret.id}/edit"):
        html = owner_client.get(url).content.decode()
        assert "s3cret-token" not in html, url
        assert "••••••" in html and "application/json" in html, url


def test_it_keeps_a_masked_secret_on_save_and_takes_a_new_one(owner_client, with_secret):
    form = owner_client.get(f"/automations/{with_secret.id}/edit").context["form"]
    data = {"name": "Hooked", "enabled": "on", "trigger": json.dumps(TRIGGER), "actions": form.initial["actions"]}
    assert owner_client.post(f"/automations/{with_secret.id}/edit", data).status_code == 302
    with_secret.refresh_from_db()
    assert with_secret.actions[0]["headers"]["Authorization"] == "Bearer s3cret-token"
    # Moved behind a new first action, it is still found (same URL).
    moved = [{"type": "do-nothing"}, json.loads(form.initial["actions"])[0]]
    assert owner_client.post(f"/automations/{with_secret.id}/edit", {**data, "actions": json.dumps(moved)}).status_code == 302
    with_secret.refresh_from_db()
    assert with_secret.actions[1]["headers"]["Authorization"] == "Bearer s3cret-token"
    changed = [{**HOOK, "headers": {"Authorization": "Bearer new"}}]
    owner_client.post(f"/automations/{with_secret.id}/edit", {**data, "actions": json.dumps(changed)})
    with_secret.refresh_from_db()
    assert with_secret.actions[0]["headers"] == {"Authorization": "Bearer new"}


def test_it_refuses_a_mask_with_no_saved_value_behind_it(owner_client, db):
    masked = [{**HOOK, "headers": {"X-Api-Key": "••••••"}}]
    response = owner_client.post("/automations/new", {"name": "x", "trigger": json.dumps(TRIGGER), "actions": json.dumps(masked)})
    assert response.status_code == 400
    assert editor_data(response)["problems"]["actions"] == [
        {"path": "actions[0].headers.X-Api-Key", "rule": "is masked but no value is saved for it: type the value"}]
    assert not Automation.objects.exists()


def test_it_gives_the_editor_each_problem_by_its_json_path(owner_client, db):
    bad = [{"type": "call-webhook", "url": "ftp://x", "method": "BREW"}, {"type": "send-notification", "to": ["nobody"]}]
    response = owner_client.post("/automations/new", {"name": "x", "trigger": json.dumps(TRIGGER), "actions": json.dumps(bad)})
    assert response.status_code == 400
    problems = editor_data(response)["problems"]
    assert problems["trigger"] == []
    assert {p["path"] for p in problems["actions"]} == {"actions[0].url", "actions[0].method", "actions[1].to"}


def test_it_marks_json_that_does_not_read_so_the_editor_opens_its_json_tab(owner_client, db):
    response = owner_client.post("/automations/new", {"name": "x", "trigger": "{", "actions": "[{"})
    problems = editor_data(response)["problems"]
    assert problems["trigger"][0]["json"] and problems["trigger"][0]["path"] == "trigger"
    assert problems["actions"][0]["json"] and problems["actions"][0]["rule"].startswith("This is not valid JSON")
