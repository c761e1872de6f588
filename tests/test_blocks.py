"""Notification channels: Prefect's block API, the Channels page, and automation actions that
name a channel (`block_document_id`)."""

from __future__ import annotations

import json

import pytest
from django.core import mail

from eventfeed.automations.actions import run_due_actions
from eventfeed.blocks import store
from eventfeed.blocks.models import BlockDocument, BlockSchema
from eventfeed.events.models import Event
from tests.test_automations_actions import fire, webhook  # noqa: F401  (the recording HTTP server)

pytestmark = pytest.mark.django_db

SLACK_FIELDS = {"title": "SlackWebhook", "type": "object", "properties": {"url": {"type": "string", "format": "password"}},
                "required": ["url"], "block_type_slug": "slack-webhook", "secret_fields": ["url"], "block_schema_references": {}}


def post(client, url, body, auth):
    return client.post(url, body, content_type="application/json", **auth)


def save_slack(client, auth, name="ops", url="https://hooks.slack.com/services/T0/B0/secret"):
    """The calls SlackWebhook(url=…).save(name) makes."""
    found = client.get("/api/block_types/slug/slack-webhook", **auth)
    block_type = found.json() if found.status_code == 200 else \
        post(client, "/api/block_types/", {"name": "Slack Webhook", "slug": "slack-webhook"}, auth).json()
    schema = post(client, "/api/block_schemas/", {"fields": SLACK_FIELDS, "block_type_id": block_type["id"], "capabilities": ["notify"],
                                                 "version": "3.9.1"}, auth).json()
    response = post(client, "/api/block_documents/", {"name": name, "data": {"url": url}, "block_schema_id": schema["id"],
                                                      "block_type_id": block_type["id"], "is_anonymous": False}, auth)
    return block_type, schema, response


def test_it_saves_and_reads_a_block_as_the_sdk_does_with_secrets_write_only(client, auth):
    block_type, schema, response = save_slack(client, auth)
    assert response.status_code == 201, response.content
    doc = response.json()
    assert doc["data"] == {"url": "********"} and doc["block_type"]["slug"] == "slack-webhook"
    assert BlockDocument.objects.get(pk=doc["id"]).data["url"].endswith("/secret")
    assert client.get(f"/api/block_types/slug/slack-webhook", **auth).json()["id"] == block_type["id"]
    assert client.get(f"/api/block_schemas/checksum/{schema['checksum']}?version=3.9.1", **auth).json()["id"] == schema["id"]
    by_name = client.get("/api/block_types/slug/slack-webhook/block_documents/name/ops?include_secrets=true", **auth).json()
    assert by_name["id"] == doc["id"] and by_name["data"] == {"url": "********"}
    assert [d["name"] for d in post(client, "/api/block_documents/filter", {}, auth).json()] == ["ops"]


def test_it_computes_the_sdks_schema_checksum(client, auth):
    # The SDK reads a schema by the checksum it computed; a match means one schema, not one per save.
    prefect = pytest.importorskip("prefect.blocks.notifications")
    fields = prefect.SlackWebhook.model_json_schema()
    assert store.checksum(fields) == prefect.SlackWebhook._calculate_schema_checksum()


def test_it_keeps_a_secret_sent_back_obfuscated(client, auth):
    _, schema, response = save_slack(client, auth)
    doc_id = response.json()["id"]
    patched = client.patch(f"/api/block_documents/{doc_id}", {"data": {"url": "********"}, "block_schema_id": schema["id"]},
                           content_type="application/json", **auth)
    assert patched.status_code == 204
    assert BlockDocument.objects.get(pk=doc_id).data["url"].endswith("/secret")


@pytest.mark.parametrize("path,body,field,status", [
    ("/api/block_types/", {"slug": "x"}, "name", 422),
    ("/api/block_schemas/", {"fields": {}, "block_type_id": "nope"}, "block_type_id", 422),
    ("/api/block_documents/", {"name": "x", "block_type_id": "00000000-0000-0000-0000-000000000000"}, "block_type_id", 422),
])
def test_it_names_the_field_of_bad_block_input(client, auth, path, body, field, status):
    response = post(client, path, body, auth)
    assert response.status_code == status
    assert field in [e["path"] for e in response.json()["errors"]]


def test_it_refuses_a_second_block_of_one_name_and_unknown_ids(client, auth):
    save_slack(client, auth)
    assert post(client, "/api/block_types/", {"name": "Slack Webhook", "slug": "slack-webhook"}, auth).status_code == 409
    assert save_slack(client, auth)[2].status_code == 409
    assert client.get("/api/block_documents/00000000-0000-0000-0000-000000000000", **auth).status_code == 404
    assert client.get("/api/block_types/slug/nope", **auth).status_code == 404


def test_it_refuses_the_block_api_without_a_key(client):
    assert client.post("/api/block_documents/filter", {}, content_type="application/json").status_code == 401


# -- the page ---------------------------------------------------------------------------------------

def test_it_sends_anonymous_visitors_to_sign_in(client):
    assert client.get("/settings/channels/").status_code == 302


def test_it_adds_a_channel_on_the_page_and_never_shows_its_secret(owner_client):
    response = owner_client.post("/settings/channels/", {"kind": "slack-webhook", "name": "ops",
                                                         "slack-webhook__url": "https://hooks.slack.com/services/T/B/hush"})
    assert response.status_code == 302
    doc = BlockDocument.objects.get(name="ops")
    assert doc.block_type.slug == "slack-webhook" and doc.data == {"url": "https://hooks.slack.com/services/T/B/hush"}
    page = owner_client.get("/settings/channels/").content.decode()
    assert "ops" in page and str(doc.id) in page and "hush" not in page


def test_it_names_the_missing_field_of_a_channel(owner_client):
    response = owner_client.post("/settings/channels/", {"kind": "discord-webhook", "name": "chat", "discord-webhook__webhook_id": "1"})
    assert response.status_code == 400
    assert "Webhook token is required" in response.content.decode()
    assert not BlockDocument.objects.exists()


def test_it_sends_a_test_message_through_apprise_and_shows_the_delivery(owner_client, webhook):  # noqa: F811
    recorder, url = webhook
    owner_client.post("/settings/channels/", {"kind": "eventfeed-apprise", "name": "local",
                                              "eventfeed-apprise__url": url.replace("http://", "json://") + "/notify"})
    doc = BlockDocument.objects.get(name="local")
    owner_client.post(f"/settings/channels/{doc.id}/test")
    sent = json.loads(recorder.requests[0]["body"])
    assert recorder.requests[0]["path"] == "/notify" and sent["title"] == "Eventfeed test message"
    doc.refresh_from_db()
    assert doc.last_delivery_ok is True and doc.last_delivery_at is not None
    assert "delivered" in owner_client.get("/settings/channels/").content.decode()


def test_it_records_a_refused_delivery(owner_client, settings):
    settings.EVENTFEED_OUTBOUND_ALLOW = []
    owner_client.post("/settings/channels/", {"kind": "eventfeed-apprise", "name": "inside",
                                              "eventfeed-apprise__url": "json://127.0.0.1:9/x"})
    doc = BlockDocument.objects.get(name="inside")
    owner_client.post(f"/settings/channels/{doc.id}/test")
    doc.refresh_from_db()
    assert doc.last_delivery_ok is False and "loopback" in doc.last_delivery_error


def rebinding_resolver(*answers: list[str]):
    """A DNS server whose answer changes after the first question; `asked` lists the questions."""
    left = iter(answers)

    def resolve(host: str, port: int) -> list[str]:
        resolve.asked.append(host)
        return next(left)

    resolve.asked = []
    return resolve


def test_it_connects_apprise_to_the_address_it_checked_when_the_dns_answer_changes(owner_client, webhook, monkeypatch):  # noqa: F811
    from eventfeed import outbound

    recorder, url = webhook  # on 127.0.0.1, which the fixture allows
    port = url.rsplit(":", 1)[1]
    resolve = rebinding_resolver(["127.0.0.1"], ["10.9.9.9"])
    monkeypatch.setattr(outbound, "system_resolver", resolve)
    owner_client.post("/settings/channels/", {"kind": "eventfeed-apprise", "name": "rebound",
                                              "eventfeed-apprise__url": f"json://hooks.example:{port}/notify"})
    doc = BlockDocument.objects.get(name="rebound")
    owner_client.post(f"/settings/channels/{doc.id}/test")
    doc.refresh_from_db()
    assert doc.last_delivery_ok is True, doc.last_delivery_error
    # Apprise asked nothing itself: the one answer checked is where it connected, as hooks.example.
    assert resolve.asked == ["hooks.example"]
    [sent] = recorder.requests
    assert sent["path"] == "/notify" and sent["headers"]["Host"] == f"hooks.example:{port}"


def test_it_refuses_an_apprise_target_whose_name_resolves_to_a_private_address(owner_client, webhook, monkeypatch):  # noqa: F811
    from eventfeed import outbound

    recorder, url = webhook
    monkeypatch.setattr(outbound, "system_resolver", rebinding_resolver(["10.9.9.9"]))
    owner_client.post("/settings/channels/", {"kind": "eventfeed-apprise", "name": "inside",
                                              "eventfeed-apprise__url": f"xml://hooks.example:{url.rsplit(':', 1)[1]}/x"})
    doc = BlockDocument.objects.get(name="inside")
    owner_client.post(f"/settings/channels/{doc.id}/test")
    doc.refresh_from_db()
    assert doc.last_delivery_ok is False and recorder.requests == []
    assert doc.last_delivery_error == ("refused: hooks.example resolves to 10.9.9.9, a private address; "
                                       "set EVENTFEED_OUTBOUND_ALLOW to allow it")


# -- actions that name a channel ------------------------------------------------------------------

def test_it_runs_prefects_send_notification_and_call_webhook_through_channels(webhook, settings):  # noqa: F811
    recorder, url = webhook
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    email = store.create_document("oncall", store.ensure_type("eventfeed-email"), {"to": "oncall@example.com"})
    hook = store.create_document("hook", store.ensure_type("webhook"), {"url": f"{url}/hook", "method": "POST", "headers": {}})
    fire([{"type": "send-notification", "block_document_id": str(email.id), "subject": "{{ event.event }}", "body": "b"},
          {"block_document_id": str(hook.id), "payload": '{"id": {{ event.resource.id|tojson }}}'}])
    assert run_due_actions() == 2
    assert mail.outbox[0].subject == "acme.order.shipped" and mail.outbox[0].to == ["oncall@example.com"]
    assert recorder.requests[0]["path"] == "/hook" and json.loads(recorder.requests[0]["body"]) == {"id": "acme.order.9"}
    assert Event.objects.filter(event="prefect.automation.action.executed").count() == 2


@pytest.mark.parametrize("action,rule", [
    ({"type": "send-notification", "block_document_id": "00000000-0000-0000-0000-000000000000", "body": "x"}, "must be the id of a channel"),
    ({"type": "call-webhook", "block_document_id": "SLACK", "payload": ""}, "call-webhook needs a webhook block"),
    ({"type": "send-notification", "block_document_id": "SLACK", "body": "x", "url": "https://x.example"}, "is not a field"),
])
def test_it_refuses_an_action_whose_channel_cannot_do_it(client, auth, action, rule):
    slack = store.create_document("s", store.ensure_type("slack-webhook"), {"url": "https://hooks.slack.com/services/a"})
    action = {k: (str(slack.id) if v == "SLACK" else v) for k, v in action.items()}
    response = post(client, "/api/automations/", {"name": "x", "trigger": {"expect": ["a"]}, "actions": [action]}, auth)
    assert response.status_code == 422
    assert any(rule in e["rule"] for e in response.json()["errors"]), response.json()


def test_it_offers_each_channel_in_the_automation_form(owner_client):
    doc = store.create_document("ops", store.ensure_type("slack-webhook"), {"url": "https://hooks.slack.com/services/a"})
    page = owner_client.get("/automations/new").content.decode()
    assert "notify ops" in page and str(doc.id) in page
    assert BlockSchema.objects.count() == 0


@pytest.mark.parametrize("slug,data,plugin", [
    ("slack-webhook", {"url": "https://hooks.slack.com/services/T0/B0/XXXX"}, "NotifySlack"),
    ("discord-webhook", {"webhook_id": "1234", "webhook_token": "abcd"}, "NotifyDiscord"),
    ("pager-duty-webhook", {"integration_key": "ikey", "api_key": "akey"}, "NotifyPagerDuty"),
    ("opsgenie-webhook", {"apikey": "key"}, "NotifyOpsgenie"),
])
def test_it_gives_each_service_the_apprise_url_its_plugin_reads(slug, data, plugin):
    import apprise

    from eventfeed.blocks.kinds import apprise_url

    client = apprise.Apprise()
    assert client.add(apprise_url(slug, data))
    assert [type(p).__name__ for p in client] == [plugin]
