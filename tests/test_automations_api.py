"""The /api/automations/ REST API (Prefect's shapes)."""

from __future__ import annotations

import pytest

from eventfeed.automations.models import Automation
from eventfeed.events.models import Event

TRIGGER = {"type": "event", "match": {"prefect.resource.id": "prefect.flow-run.*"}, "expect": ["prefect.flow-run.Failed"],
           "posture": "Reactive", "threshold": 1, "within": 0}


def post(client, url, body, auth):
    return client.post(url, body, content_type="application/json", **auth)


@pytest.fixture
def created(client, auth):
    response = post(client, "/api/automations/", {"name": "failures", "trigger": TRIGGER, "actions": [{"type": "do-nothing"}]}, auth)
    assert response.status_code == 201, response.content
    return response.json()


def test_it_creates_an_automation_in_prefects_shape(created):
    assert set(created) >= {"id", "name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger",
                            "actions_on_resolve", "owner_resource", "created", "updated"}
    assert created["enabled"] is True
    assert created["trigger"]["for_each"] == [] and created["trigger"]["id"]
    assert Event.objects.filter(event="prefect.automation.created").exists()


def test_it_accepts_an_automation_without_actions(client, auth):
    response = post(client, "/api/automations/", {"name": "just record", "trigger": TRIGGER}, auth)
    assert response.status_code == 201
    assert response.json()["actions"] == []


@pytest.mark.parametrize(
    "body,path",
    [
        ({"name": "x", "trigger": {**TRIGGER, "within": -1}}, "trigger.within"),
        ({"name": "x", "trigger": {"type": "compound", "require": "all", "triggers": [TRIGGER, {**TRIGGER, "threshold": 0}]}},
         "trigger.triggers[1].threshold"),
        ({"name": "x", "trigger": {**TRIGGER, "posture": "Proactive", "within": 5}}, "trigger.within"),
        ({"name": "x", "trigger": {**TRIGGER, "surprise": 1}}, "trigger.surprise"),
        ({"name": "x", "trigger": TRIGGER, "actions": [{"type": "run-deployment"}]}, "actions[0].type"),
        ({"name": "x", "trigger": TRIGGER, "actions": [{"type": "call-webhook", "url": "ftp://x"}]}, "actions[0].url"),
        ({"name": "", "trigger": TRIGGER}, "name"),
        ({"name": "x", "trigger": TRIGGER, "owner": "me"}, "owner"),
    ],
)
def test_it_refuses_bad_input_naming_the_json_path(client, auth, body, path):
    response = post(client, "/api/automations/", body, auth)
    assert response.status_code == 422
    assert path in [e["path"] for e in response.json()["errors"]]
    assert not Automation.objects.exists()


def test_it_reads_replaces_patches_and_deletes(client, auth, created):
    url = f"/api/automations/{created['id']}"
    assert client.get(url, **auth).json()["name"] == "failures"
    response = client.put(url, {"name": "renamed", "trigger": {**TRIGGER, "threshold": 2}}, content_type="application/json", **auth)
    assert response.status_code == 204
    got = client.get(url, **auth).json()
    assert got["name"] == "renamed" and got["trigger"]["threshold"] == 2 and got["actions"] == []
    assert client.patch(url, {"enabled": False}, content_type="application/json", **auth).status_code == 204
    assert client.get(url, **auth).json()["enabled"] is False
    assert client.patch(url, {"name": "no"}, content_type="application/json", **auth).status_code == 422
    assert client.delete(url, **auth).status_code == 204
    assert client.get(url, **auth).status_code == 404


def test_it_filters_counts_and_finds_related(client, auth, created):
    post(client, "/api/automations/", {"name": "other", "tags": ["team-a"], "owner_resource": "acme.team.a",
                                       "trigger": {**TRIGGER, "match": {"prefect.resource.id": "acme.order.1"}}}, auth)
    names = [a["name"] for a in post(client, "/api/automations/filter", {"sort": "NAME_DESC"}, auth).json()]
    assert names == ["other", "failures"]
    assert [a["name"] for a in post(client, "/api/automations/filter", {"automations": {"tags": {"all_": ["team-a"]}}}, auth).json()] == ["other"]
    assert post(client, "/api/automations/count", {}, auth).json() == 2
    assert post(client, "/api/automations/filter", {"limit": 1000}, auth).status_code == 422
    related = client.get("/api/automations/related-to/prefect.flow-run.abc", **auth).json()
    assert [a["name"] for a in related] == ["failures"]
    assert [a["name"] for a in client.get("/api/automations/related-to/acme.team.a", **auth).json()] == ["other"]
    assert client.delete("/api/automations/owned-by/acme.team.a", **auth).status_code == 202
    assert post(client, "/api/automations/count", {}, auth).json() == 1


@pytest.mark.parametrize("body, path", [
    ({"automations": {"id": 5}}, "automations.id"),
    ({"automations": {"id": {"any_": 5}}}, "automations.id.any_"),
    ({"automations": {"id": {"any_": ["nope"]}}}, "automations.id.any_"),
    ({"automations": {"name": {"any_": [1]}}}, "automations.name.any_[0]"),
    ({"automations": {"tags": []}}, "automations.tags"),
    ({"automations": {"tags": {"is_null_": "yes"}}}, "automations.tags.is_null_"),
    ({"automations": {"created": {"before_": "soon"}}}, "automations.created.before_"),
    ({"automations": {"colour": {}}}, "automations.colour"),
    ({"sort": "SIDEWAYS"}, "sort"),
    ({"offset": -1}, "offset"),
    ({"limits": 1}, "limits"),
])
def test_it_answers_a_bad_automation_filter_with_422_naming_the_field(client, auth, created, body, path):
    r = post(client, "/api/automations/filter", body, auth)
    assert r.status_code == 422
    assert path in [e["path"] for e in r.json()["errors"]]


def test_it_refuses_a_nul_character_in_a_trigger_pattern(client, auth, db):
    # PostgreSQL cannot store it in the trigger's JSON nor compare with it in the preview.
    r = post(client, "/api/automations/", {"name": "nul", "trigger": {**TRIGGER, "match": {"prefect.resource.id": "a\u0000b"}}}, auth)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == 'trigger.match["prefect.resource.id"]'


def test_it_refuses_anonymous_and_wrong_keys(client, db):
    assert client.post("/api/automations/", {}, content_type="application/json").status_code == 401
    wrong = {"HTTP_AUTHORIZATION": "Bearer evf_nope"}
    assert client.post("/api/automations/", {}, content_type="application/json", **wrong).status_code == 403
    assert client.get("/api/automations/00000000-0000-0000-0000-000000000000", **wrong).status_code == 403


def test_it_404s_unknown_and_malformed_ids(client, auth):
    assert client.get("/api/automations/00000000-0000-0000-0000-000000000000", **auth).status_code == 404
    assert client.get("/api/automations/not-a-uuid", **auth).status_code == 404


def test_it_reads_a_null_limit_as_the_default(client, auth, created):
    # The SDK's read_automations() (and so `prefect automation ls`) sends this exact body.
    response = post(client, "/api/automations/filter", {"automations": None, "sort": None, "limit": None, "offset": 0}, auth)
    assert response.status_code == 200, response.content
    assert [a["id"] for a in response.json()] == [created["id"]]


def test_it_gives_a_missing_type_the_models_default(client, auth, created):
    # update_automation() dumps with exclude_unset: every defaulted `type` is left out.
    child = {k: v for k, v in TRIGGER.items() if k != "type"}
    body = {"name": "renamed", "trigger": {"triggers": [child, child], "require": 1},
            "actions": [{}, {"url": "https://example.com/h"}, {"event": "acme.x", "resource": {}}]}
    response = client.put(f"/api/automations/{created['id']}", body, content_type="application/json", **auth)
    assert response.status_code == 204, response.content
    automation = Automation.objects.get(pk=created["id"])
    assert automation.trigger["type"] == "compound" and automation.trigger["triggers"][0]["type"] == "event"
    assert [a["type"] for a in automation.actions] == ["do-nothing", "call-webhook", "emit-event"]
    sequence = {"name": "s", "trigger": {"triggers": [child, child]}}
    assert post(client, "/api/automations/", sequence, auth).json()["trigger"]["type"] == "sequence"


def test_it_names_the_type_when_an_untyped_action_is_ambiguous(client, auth):
    body = {"name": "x", "trigger": TRIGGER, "actions": [{"source": "inferred"}]}
    response = post(client, "/api/automations/", body, auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "actions[0].type"
