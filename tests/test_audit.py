"""The audit trail: every change of state is an `eventfeed.audit.*` event naming its actor, with
what changed and never a key, password or secret."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from eventfeed.automations import actions, engine, store
from eventfeed.events.ingest import wire as published
from eventfeed.events.models import ApiKey, Event
from eventfeed.events.wire import wire
from tests.conftest import make_event, store as store_events

SECRET_HEADER = "Bearer hook-secret-value"
SECRET_URL = "https://hooks.example.com/services/T000/B000/XXXXSECRET"


def audit(what: str) -> list[Event]:
    return list(Event.objects.filter(event=f"eventfeed.audit.{what}").order_by("occurred"))


def actor(event: Event) -> dict:
    [found] = [r for r in event.related if r.get("prefect.resource.role") == "actor"]
    return found


def everything_said() -> str:
    return json.dumps([wire(e) for e in Event.objects.filter(event__startswith="eventfeed.audit.")], default=str)


def test_it_records_sign_in_failures_and_sign_out_without_the_password(client, owner):
    owner.set_password("right-password-1")
    owner.save()
    client.post("/accounts/login/", {"username": owner.username, "password": "wrong-password-9"}, REMOTE_ADDR="10.1.2.3")
    client.post("/accounts/login/", {"username": "nobody", "password": "wrong-password-9"}, REMOTE_ADDR="10.1.2.3")
    assert client.post("/accounts/login/", {"username": owner.username, "password": "right-password-1"}).status_code == 302
    client.post("/accounts/logout/")
    # force_login (a test client's, a script's) came over no connection: not a sign-in to audit.
    client.force_login(owner)
    failed, unknown = audit("sign-in.failed")
    assert failed.resource_id == f"eventfeed.user.{owner.pk}"
    assert failed.payload == {"username": owner.username, "address": "10.1.2.3", "locked_out": False}
    assert actor(failed)["prefect.resource.id"] == "eventfeed.client.10.1.2.3"
    assert unknown.resource_id == "eventfeed.user.unknown" and unknown.payload["username"] == "nobody"
    [signed_in] = audit("sign-in")
    assert signed_in.resource_id == f"eventfeed.user.{owner.pk}" and actor(signed_in)["prefect.resource.id"] == signed_in.resource_id
    assert len(audit("sign-out")) == 1
    assert "wrong-password-9" not in everything_said() and "right-password-1" not in everything_said()


def test_it_records_api_keys_created_and_revoked_by_a_user_without_the_key(owner_client, owner):
    page = owner_client.post("/settings/api-keys/", {"name": "ci"}).content.decode()
    key = ApiKey.objects.get(name="ci")
    raw = page.split("evf_", 1)[1].split("<", 1)[0].split('"', 1)[0]
    owner_client.post(f"/settings/api-keys/{key.pk}/revoke")
    [created] = audit("api-key.created")
    [revoked] = audit("api-key.revoked")
    for event in (created, revoked):
        assert event.resource_id == f"eventfeed.api-key.{key.pk}" and event.payload == {"name": "ci"}
        assert actor(event) == {"prefect.resource.id": f"eventfeed.user.{owner.pk}", "prefect.resource.role": "actor",
                                "prefect.resource.name": owner.username}
    assert raw and raw not in everything_said() and key.hint not in everything_said()


def test_it_records_keys_made_by_a_command_as_the_system(db, capsys):
    call_command("create_api_key", "deploy")
    raw = capsys.readouterr().out.strip()
    call_command("revoke_api_key", "deploy")
    [created] = audit("api-key.created")
    assert actor(created)["prefect.resource.id"] == "eventfeed.system" and len(audit("api-key.revoked")) == 1
    assert raw not in everything_said()


def test_it_records_each_automation_change_by_the_key_that_made_it(client, auth, api_key):
    key = ApiKey.objects.get()
    body = {"name": "paging", "trigger": {"expect": ["acme.down"]},
            "actions": [{"type": "call-webhook", "url": SECRET_URL, "headers": {"Authorization": SECRET_HEADER}}]}
    created = client.post("/api/automations/", body, content_type="application/json", **auth).json()
    url = f"/api/automations/{created['id']}"
    assert client.put(url, {**body, "name": "paging v2"}, content_type="application/json", **auth).status_code == 204
    assert client.patch(url, {"enabled": False}, content_type="application/json", **auth).status_code == 204
    assert client.patch(url, {"enabled": True}, content_type="application/json", **auth).status_code == 204
    assert client.delete(url, **auth).status_code == 204
    names = [e.event for e in Event.objects.filter(event__startswith="eventfeed.audit.automation.").order_by("occurred")]
    assert names == ["eventfeed.audit.automation." + w for w in ("created", "updated", "disabled", "enabled", "deleted")]
    [created_event] = audit("automation.created")
    assert created_event.resource_id == f"prefect.automation.{created['id']}"
    assert actor(created_event)["prefect.resource.id"] == f"eventfeed.api-key.{key.pk}"
    [webhook] = created_event.payload["automation"]["actions"]
    assert webhook["url"] == "https://hooks.example.com/…" and webhook["headers"] == {"Authorization": "[redacted]"}
    [updated] = audit("automation.updated")
    assert updated.payload == {"changed": {"name": {"from": "paging", "to": "paging v2"}}}
    said = everything_said()
    assert SECRET_HEADER not in said and "XXXXSECRET" not in said and api_key not in said


def test_it_records_automation_changes_made_on_the_pages_by_the_user(owner_client, owner):
    a = store.save_automation(store.parse_automation({"name": "x", "trigger": {"expect": ["a"]}}))
    owner_client.post(f"/automations/{a.id}/enabled", {})
    owner_client.post(f"/automations/{a.id}/delete")
    for event in audit("automation.disabled") + audit("automation.deleted"):
        assert actor(event)["prefect.resource.id"] == f"eventfeed.user.{owner.pk}"
    assert actor(audit("automation.created")[0])["prefect.resource.id"] == "eventfeed.system"


def test_it_names_the_automation_whose_action_paused_another(db):
    target = store.save_automation(store.parse_automation({"name": "target", "trigger": {"expect": ["b"]}}))
    pauser = store.save_automation(store.parse_automation(
        {"name": "pauser", "trigger": {"expect": ["a"]},
         "actions": [{"type": "pause-automation", "source": "selected", "automation_id": str(target.id)}]}))
    engine.evaluate([published(e) for e in store_events(make_event("a")).stored])
    actions.run_due_actions()
    [disabled] = audit("automation.disabled")
    assert disabled.resource_id == target.resource_id
    assert actor(disabled)["prefect.resource.id"] == pauser.resource_id


def test_it_makes_audit_events_filterable_like_any_event(client, auth, owner_client, owner):
    owner_client.post("/settings/api-keys/", {"name": "ci"})
    by_owner = {"id": [f"eventfeed.user.{owner.pk}"], "role": ["actor"]}
    body = {"filter": {"event": {"prefix": ["eventfeed.audit."]}, "related": by_owner}}
    found = client.post("/api/events/filter", body, content_type="application/json", **auth).json()["events"]
    assert [e["event"] for e in found] == ["eventfeed.audit.api-key.created"]
    body["filter"]["related"] = {"id": ["eventfeed.user.0"], "role": ["actor"]}
    assert client.post("/api/events/filter", body, content_type="application/json", **auth).json()["events"] == []


def test_it_records_webhook_changes_without_their_secret_or_url(client, owner):
    _, raw = ApiKey.create("alice's key", created_by=owner)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def send(method, path, body=None):
        return getattr(client, method)(path, json.dumps(body) if body is not None else "", content_type="application/json", **auth)

    made = send("post", "/api/webhooks/", {"name": "Models", "template": '{"event": "x", "resource": {"prefect.resource.id": "y"}}',
                                           "verification": {"kind": "github", "secret": "gh-secret-1"}}).json()
    path = f"/api/webhooks/{made['id']}"
    assert send("patch", path, {"name": "Models v2", "verification": {"kind": "github", "secret": "gh-secret-2"}}).status_code == 204
    assert send("patch", path, {"enabled": False}).status_code == 204
    rotated = send("post", f"{path}/rotate").json()
    assert send("delete", path).status_code == 204
    names = [e.event.removeprefix("eventfeed.audit.webhook.")
             for e in Event.objects.filter(event__startswith="eventfeed.audit.webhook.").order_by("occurred")]
    assert names == ["created", "updated", "disabled", "rotated", "deleted"]
    [updated] = audit("webhook.updated")
    assert updated.resource_id == f"eventfeed.webhook.{made['id']}" and updated.payload["changed"]["name"] == {"from": "Models", "to": "Models v2"}
    assert actor(updated)["prefect.resource.id"].startswith("eventfeed.api-key.")
    said = everything_said()
    for secret in ("gh-secret-1", "gh-secret-2", made["slug"], rotated["slug"]):
        assert secret not in said


def test_it_records_channel_changes_without_their_credentials(client, auth, owner_client, owner):
    from tests.test_blocks import save_slack

    _, schema, response = save_slack(client, auth, url="https://hooks.slack.com/services/T0/B0/first-secret")
    doc_id = response.json()["id"]
    client.patch(f"/api/block_documents/{doc_id}", {"data": {"url": "https://hooks.slack.com/services/T0/B0/second-secret"}},
                 content_type="application/json", **auth)
    client.delete(f"/api/block_documents/{doc_id}", **auth)
    owner_client.post("/settings/channels/", {"kind": "slack-webhook", "name": "page",
                                              "slack-webhook__url": "https://hooks.slack.com/services/T/B/third-secret"})
    names = [e.event.removeprefix("eventfeed.audit.block-document.")
             for e in Event.objects.filter(event__startswith="eventfeed.audit.block-document.").order_by("occurred")]
    assert names == ["created", "updated", "deleted", "created"]
    [updated] = audit("block-document.updated")
    assert updated.resource_id == f"prefect.block-document.{doc_id}"
    assert updated.payload == {"name": "ops", "type": "slack-webhook", "changed_fields": ["url"]}
    assert actor(audit("block-document.created")[1])["prefect.resource.id"] == f"eventfeed.user.{owner.pk}"
    said = everything_said()
    assert "first-secret" not in said and "second-secret" not in said and "third-secret" not in said


@pytest.mark.parametrize("url, shown", [
    ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…"),
    ("http://alerts.internal:8080/", "http://alerts.internal:8080"),
    ("https://x.example/?token=abc", "https://x.example/…"),
])
def test_it_shows_only_the_scheme_and_host_of_a_url(url, shown):
    from eventfeed.audit import redact_url

    assert redact_url(url) == shown


# -- what was added later: one test per audit event -------------------------------------------

def audited(what: str, resource_id: str, actor_id: str, *secrets: str) -> Event:
    """The one eventfeed.audit.<what>: on its resource, by its actor, and no secret anywhere."""
    [event] = audit(what)
    assert event.event == f"eventfeed.audit.{what}"
    assert event.resource_id == resource_id
    assert actor(event)["prefect.resource.id"] == actor_id
    said = everything_said()
    for secret in secrets:
        assert secret not in said
    return event


def test_it_records_a_retention_override_created_on_the_storage_page(owner_client, owner):
    assert owner_client.post("/settings/storage/", {"pattern": "acme.audit.*", "days": 400}).status_code == 302
    event = audited("retention-override.created", "eventfeed.retention-override.acme.audit.*", f"eventfeed.user.{owner.pk}",
                    "password-alice-1")
    assert event.payload == {"pattern": "acme.audit.*", "days": 400}


def test_it_records_a_retention_override_changed_with_what_changed(owner_client, owner):
    owner_client.post("/settings/storage/", {"pattern": "acme.noise", "days": 3})
    owner_client.post("/settings/storage/", {"pattern": "acme.noise", "days": 3})  # the same again: no change
    owner_client.post("/settings/storage/", {"pattern": "acme.noise", "days": 1})
    event = audited("retention-override.updated", "eventfeed.retention-override.acme.noise", f"eventfeed.user.{owner.pk}")
    assert event.payload == {"pattern": "acme.noise", "changed": {"days": {"from": 3, "to": 1}}}


def test_it_records_a_retention_override_deleted(owner_client, owner):
    from eventfeed.events.models import RetentionOverride

    owner_client.post("/settings/storage/", {"pattern": "acme.noise", "days": 3})
    override = RetentionOverride.objects.get()
    assert owner_client.post(f"/settings/storage/overrides/{override.pk}/delete").status_code == 302
    event = audited("retention-override.deleted", "eventfeed.retention-override.acme.noise", f"eventfeed.user.{owner.pk}")
    assert event.payload == {"pattern": "acme.noise", "days": 3} and not RetentionOverride.objects.exists()


def test_it_records_a_prefect_server_followed_the_first_time_by_the_system(db):
    from eventfeed.follow import follower

    url = "http://prefect.internal:4200/api"
    follower.set_connected(url, True)
    follower.set_connected(url, False, "gone")
    follower.set_connected(url, True)
    event = audited("prefect-server.followed", f"eventfeed.prefect-server.{url}", "eventfeed.system")
    assert event.payload == {"url": url}


def test_it_records_a_dry_replay_by_the_key_that_ran_it(client, auth, api_key):
    from tests.test_automations_replay import TRIGGER

    key = ApiKey.objects.get()
    a = store.save_automation(store.parse_automation({"name": "Twice", "trigger": TRIGGER}))
    store_events(make_event("acme.job.failed", "acme.job.1"), make_event("acme.job.failed", "acme.job.1"))
    body = {"filter": {"resource": {"id": ["acme.job.1"]}}, "run_actions": False}
    assert client.post(f"/api/automations/{a.id}/replay", body, content_type="application/json", **auth).status_code == 200
    event = audited("automation.replayed", a.resource_id, f"eventfeed.api-key.{key.pk}", api_key)
    assert {k: event.payload[k] for k in ("run_actions", "events_read", "fired")} == {"run_actions": False, "events_read": 2, "fired": 1}
    assert "firing_ids" not in event.payload


def test_it_records_a_real_replay_on_the_page_with_the_firings_it_made(owner_client, owner):
    from eventfeed.automations.models import Firing
    from tests.test_automations_replay import TRIGGER

    a = store.save_automation(store.parse_automation(
        {"name": "Twice", "trigger": TRIGGER,
         "actions": [{"type": "call-webhook", "url": SECRET_URL, "headers": {"Authorization": SECRET_HEADER}}]}))
    store_events(make_event("acme.job.failed", "acme.job.1"), make_event("acme.job.failed", "acme.job.1"))
    assert owner_client.post(f"/automations/{a.id}/replay", {"run_actions": "on"}).status_code == 200
    event = audited("automation.replayed", a.resource_id, f"eventfeed.user.{owner.pk}", SECRET_HEADER, "XXXXSECRET")
    assert event.payload["run_actions"] is True and event.payload["fired"] == 1
    assert event.payload["firing_ids"] == [str(f.id) for f in Firing.objects.filter(automation=a)]


def test_it_records_an_action_rerun_without_the_action(owner_client, owner, settings):
    from eventfeed.automations.models import ActionRun
    from tests.test_automations_actions import fire

    settings.EVENTFEED_OUTBOUND_ALLOW = []
    a = fire([{"type": "call-webhook", "url": SECRET_URL, "headers": {"Authorization": SECRET_HEADER}}])
    ActionRun.objects.update(status=ActionRun.FAILED)
    failed = ActionRun.objects.get()
    assert owner_client.post(f"/automations/{a.id}/runs/{failed.id}/rerun").status_code == 302
    again = ActionRun.objects.get(rerun_of=failed)
    event = audited("automation.action.rerun", a.resource_id, f"eventfeed.user.{owner.pk}", SECRET_HEADER, "XXXXSECRET")
    assert event.payload == {"run": str(again.id), "rerun_of": str(failed.id), "firing": str(failed.firing_id),
                             "action_index": 0, "action_type": "call-webhook"}


def test_it_records_a_webhook_secret_rotation_as_a_changed_field_without_the_secret(client, owner, owner_client):
    _, raw = ApiKey.create("alice's key", created_by=owner)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    made = client.post("/api/webhooks/", {"name": "Shop", "template": '{"event": "x", "resource": {"prefect.resource.id": "y"}}',
                                          "verification": {"kind": "github", "secret": "gh-secret-1"}},
                       content_type="application/json", **auth).json()
    # Same kind, a new secret: what the API shows ({"kind": "github", "secret_set": true}) does not change.
    assert client.patch(f"/api/webhooks/{made['id']}", {"verification": {"kind": "github", "secret": "gh-secret-2"}},
                        content_type="application/json", **auth).status_code == 204
    key = ApiKey.objects.get(name="alice's key")
    event = audited("webhook.updated", f"eventfeed.webhook.{made['id']}", f"eventfeed.api-key.{key.pk}",
                    "gh-secret-1", "gh-secret-2", raw, made["slug"])
    assert event.payload == {"changed": {"verification.secret": {"from": "[redacted]", "to": "[redacted]"}}}


def test_it_records_a_saved_view_created_by_its_owner(owner_client, owner):
    from eventfeed.savedviews.models import SavedView

    owner_client.post("/views/", {"name": "Failures", "query": "event=prefect.flow-run.Failed&range=24h", "shared": "on"})
    view = SavedView.objects.get()
    event = audited("saved-view.created", f"eventfeed.saved-view.{view.pk}", f"eventfeed.user.{owner.pk}", "password-alice-1")
    assert event.payload == {"name": "Failures", "query": "event=prefect.flow-run.Failed&range=24h", "shared": True}


@pytest.mark.parametrize("shared, what", [("on", "shared"), ("off", "unshared")])
def test_it_records_a_saved_view_shared_or_unshared_once(owner_client, owner, shared, what):
    from eventfeed.savedviews import store as views

    view = views.save_view(owner, "Failures", "range=24h", shared=shared == "off")
    owner_client.post(f"/views/{view.pk}/share", {"shared": shared})
    owner_client.post(f"/views/{view.pk}/share", {"shared": shared})  # already so: nothing changes
    event = audited(f"saved-view.{what}", f"eventfeed.saved-view.{view.pk}", f"eventfeed.user.{owner.pk}")
    assert event.payload == {"name": "Failures"}


def test_it_records_a_saved_view_deleted_with_what_it_was(owner_client, owner):
    from eventfeed.savedviews import store as views

    view = views.save_view(owner, "Failures", "range=24h", shared=False)
    owner_client.post(f"/views/{view.pk}/delete")
    event = audited("saved-view.deleted", f"eventfeed.saved-view.{view.pk}", f"eventfeed.user.{owner.pk}")
    assert event.payload == {"name": "Failures", "query": "range=24h", "shared": False}


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", password="password-root-1")
    client.force_login(admin)
    return client, admin


def test_it_records_a_user_added_in_the_admin_without_the_password(admin_client):
    from django.contrib.auth import get_user_model

    client, admin = admin_client
    response = client.post("/admin/auth/user/add/", {"username": "carol", "password1": "Carol-secret-991", "password2": "Carol-secret-991",
                                                     "usable_password": "true"})
    assert response.status_code == 302, response.content.decode()[:2000]
    carol = get_user_model().objects.get(username="carol")
    event = audited("admin.added", f"eventfeed.user.{carol.pk}", f"eventfeed.user.{admin.pk}", "Carol-secret-991", carol.password)
    assert event.payload["model"] == "auth.user"


def test_it_records_an_api_key_revoked_in_the_admin_without_its_first_characters(admin_client):
    client, admin = admin_client
    key, raw = ApiKey.create("ci")
    response = client.post(f"/admin/events/apikey/{key.pk}/change/", {"name": "ci", "revoked_0": "2026-12-04", "revoked_1": "12:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    event = audited("admin.changed", f"eventfeed.api-key.{key.pk}", f"eventfeed.user.{admin.pk}", raw, key.hint)
    assert event.payload == {"model": "events.apikey", "change": "Changed Revoked."}
    assert event.resource["prefect.resource.name"] == "ci"


def test_it_records_an_object_deleted_in_the_admin(admin_client):
    from django.contrib.auth.models import Group

    client, admin = admin_client
    group = Group.objects.create(name="operators")
    assert client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"}).status_code == 302
    event = audited("admin.deleted", f"eventfeed.admin.auth.group.{group.pk}", f"eventfeed.user.{admin.pk}")
    assert event.payload == {"model": "auth.group", "change": ""}


def test_it_records_the_demo_key_quickstart_replaces_as_the_system(db):
    from eventfeed.events.management.commands.quickstart import fresh_demo_key

    first, second = fresh_demo_key(), fresh_demo_key()
    old, new = ApiKey.objects.order_by("pk")
    revoked = audited("api-key.revoked", f"eventfeed.api-key.{old.pk}", "eventfeed.system", first, second, old.hint, new.hint)
    assert revoked.payload == {"name": "demo"}
    assert [e.resource_id for e in audit("api-key.created")] == [f"eventfeed.api-key.{old.pk}", f"eventfeed.api-key.{new.pk}"]


def test_it_records_a_block_type_created_through_the_api(client, auth, api_key):
    from tests.test_blocks import save_slack

    block_type, _, _ = save_slack(client, auth, url="https://hooks.slack.com/services/T0/B0/type-secret")
    key = ApiKey.objects.get()
    event = audited("block-type.created", "prefect.block-type.slack-webhook", f"eventfeed.api-key.{key.pk}", api_key, "type-secret")
    assert event.payload == {"block_type": {"name": "Slack Webhook", "slug": "slack-webhook"}}


def test_it_records_a_block_type_updated_with_what_changed(client, auth, api_key):
    from tests.test_blocks import save_slack

    block_type, _, _ = save_slack(client, auth)
    for _ in range(2):  # the second PATCH changes nothing
        assert client.patch(f"/api/block_types/{block_type['id']}", {"description": "Posts to Slack"},
                            content_type="application/json", **auth).status_code == 204
    key = ApiKey.objects.get()
    event = audited("block-type.updated", "prefect.block-type.slack-webhook", f"eventfeed.api-key.{key.pk}", api_key)
    assert event.payload == {"changed": {"description": {"from": None, "to": "Posts to Slack"}}}


def test_it_records_a_block_schema_created_once_per_checksum(client, auth, api_key):
    from tests.test_blocks import save_slack

    _, schema, _ = save_slack(client, auth, name="ops")
    save_slack(client, auth, name="ops-2")  # the same schema again: found, not made
    key = ApiKey.objects.get()
    event = audited("block-schema.created", f"prefect.block-schema.{schema['id']}", f"eventfeed.api-key.{key.pk}", api_key)
    assert event.payload == {"block_type": "slack-webhook", "checksum": schema["checksum"], "version": "3.9.1", "capabilities": ["notify"]}
