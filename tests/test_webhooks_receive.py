"""/hooks/{slug}: templates from Prefect Cloud's webhook docs, signatures, failures, hostile input."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from django.test import override_settings

from eventfeed.events.models import Event
from eventfeed.webhooks import presets, store
from eventfeed.webhooks.models import Webhook, WebhookRequest
from eventfeed.webhooks.verification import Verification
from tests.test_webhooks_verification import STANDARD_SECRET, github_signature, standard_signature, stripe_signature

pytestmark = pytest.mark.django_db(transaction=True)

# The templates of Prefect Cloud's webhook documentation, unchanged.
STATIC = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.recommendations",
        "prefect.resource.name": "Recommendations [Products]",
        "producing-team": "Data Science"
    }
}"""
DYNAMIC = """{
    "event": "model.refreshed",
    "resource": {
        "prefect.resource.id": "product.models.{{ body.model }}",
        "prefect.resource.name": "{{ body.friendly_name }}",
        "producing-team": "Data Science"
    }
}"""
PASS_THROUGH = "{{ body|tojson }}"
CLOUD_EVENT = "{{ body|from_cloud_event(headers) }}"


def hook(template=STATIC, verification=None, **fields) -> Webhook:
    return store.save(Webhook(name="Models", **fields), {"template": template, "verification": verification or Verification()})


def url(webhook: Webhook) -> str:
    return f"/hooks/{webhook.slug}"


def failed_events():
    return Event.objects.filter(event=store.FAILED_EVENT)


def test_it_stores_a_static_template_event_from_a_get_with_no_body(client):
    webhook = hook()
    r = client.get(url(webhook))
    assert r.status_code == 204
    event = Event.objects.get()
    assert event.event == "model.refreshed"
    assert event.resource == {"prefect.resource.id": "product.models.recommendations",
                              "prefect.resource.name": "Recommendations [Products]", "producing-team": "Data Science"}
    # The webhook is a related resource, and the payload defaults to what arrived.
    assert event.related == [{"prefect.resource.id": f"eventfeed.webhook.{webhook.id}", "prefect.resource.role": "webhook",
                              "prefect.resource.name": "Models"}]
    assert event.payload["method"] == "GET"
    assert event.payload["body"] == ""
    request = WebhookRequest.objects.get()
    assert (request.status, request.outcome, request.event_id) == (204, "stored", event.id)


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "head", "options"])
def test_it_answers_any_method(client, method):
    webhook = hook()
    assert getattr(client, method)(url(webhook)).status_code == 204
    assert Event.objects.get().payload["method"] == method.upper()


def test_it_reads_a_form_body_like_prefect_clouds_dynamic_example(client):
    webhook = hook(DYNAMIC)
    r = client.post(url(webhook), "model=recommendations&friendly_name=Recommendations%20[Products]",
                    content_type="application/x-www-form-urlencoded")
    assert r.status_code == 204
    event = Event.objects.get()
    assert event.resource["prefect.resource.id"] == "product.models.recommendations"
    assert event.resource["prefect.resource.name"] == "Recommendations [Products]"
    assert event.payload["body"] == {"model": "recommendations", "friendly_name": "Recommendations [Products]"}


def test_it_passes_a_prefect_event_through_with_defaults_filled(client):
    webhook = hook(PASS_THROUGH)
    body = {"event": "model.refreshed", "resource": {"prefect.resource.id": "product.models.recommendations"}}
    assert client.post(url(webhook), body, content_type="application/json").status_code == 204
    event = Event.objects.get()
    assert event.event == "model.refreshed"
    assert event.payload["body"] == body
    given = {**body, "id": str(uuid.uuid4()), "occurred": "2026-11-21T09:30:00Z", "payload": {"k": 1},
             "related": [{"prefect.resource.id": "x", "prefect.resource.role": "team"}]}
    assert client.post(url(webhook), given, content_type="application/json").status_code == 204
    second = Event.objects.get(id=given["id"])
    assert second.payload == {"k": 1}
    assert second.occurred.isoformat() == "2026-11-21T09:30:00+00:00"
    assert [r["prefect.resource.role"] for r in second.related] == ["team", "webhook"]


def test_it_parses_a_text_body_as_json_first_then_keeps_the_text(client):
    webhook = hook('{"event": "t", "resource": {"prefect.resource.id": {{ body.a|default(body)|tojson }}}}')
    client.post(url(webhook), '{"a": "from-json"}', content_type="text/plain")
    client.post(url(webhook), "just text", content_type="text/plain")
    assert set(Event.objects.values_list("resource_id", flat=True)) == {"from-json", "just text"}


def test_it_reads_headers_in_any_case_without_authorization(client):
    template = ('{"event": "h", "resource": {"prefect.resource.id": "{{ headers[\'x-team\'] }}-{{ headers[\'X-TEAM\'] }}",'
                ' "auth": "{{ headers[\'Authorization\'] }}", "cookie": "{{ headers.cookie }}"}}')
    webhook = hook(template)
    r = client.post(url(webhook), "", content_type="text/plain", HTTP_X_TEAM="data", HTTP_AUTHORIZATION="Bearer secret",
                    HTTP_COOKIE="sessionid=abc")
    assert r.status_code == 204
    event = Event.objects.get()
    assert event.resource == {"prefect.resource.id": "data-data", "auth": "", "cookie": ""}
    assert not {"Authorization", "Cookie"} & set(event.payload["headers"])
    assert "Authorization" not in WebhookRequest.objects.get().headers


def test_it_takes_a_structured_cloudevent_through_from_cloud_event(client):
    webhook = hook(CLOUD_EVENT)
    body = {"specversion": "1.0", "id": "A234-1234-1234", "source": "/mycontext", "type": "com.example.someevent",
            "subject": "larger-context", "time": "2026-11-21T09:30:00Z", "data": {"k": 1}}
    assert client.post(url(webhook), body, content_type="application/cloudevents+json").status_code == 204
    event = Event.objects.get()
    assert (event.event, event.resource_id) == ("com.example.someevent", "larger-context")
    assert event.payload["data"] == {"k": 1}
    assert event.payload["cloudevents"]["source"] == "/mycontext"
    assert event.related[-1]["prefect.resource.role"] == "webhook"


def test_it_takes_a_binary_cloudevent_through_from_cloud_event(client):
    webhook = hook(CLOUD_EVENT)
    r = client.post(url(webhook), '{"k": 2}', content_type="application/json", HTTP_CE_SPECVERSION="1.0",
                    HTTP_CE_ID="b1", HTTP_CE_SOURCE="/bin", HTTP_CE_TYPE="com.example.binary")
    assert r.status_code == 204
    event = Event.objects.get()
    assert (event.event, event.resource_id, event.payload["data"]) == ("com.example.binary", "/bin", {"k": 2})


def test_it_answers_a_bad_cloudevent_with_400_and_the_attribute(client):
    webhook = hook(CLOUD_EVENT)
    r = client.post(url(webhook), {"specversion": "1.0", "source": "/s", "type": "t"}, content_type="application/json")
    assert r.status_code == 400
    assert "id: is required" in r.json()["detail"]


@pytest.mark.parametrize("template, reason", [
    ('{"event": "x"', "did not render JSON"),
    ('["not", "an", "object"]', "must render a JSON object, not an array"),
    ('{"event": "x", "resource": {}}', 'resource["prefect.resource.id"] is required'),
    ('{"event": "x", "resource": {"prefect.resource.id": "{{ body.name }}"}}', "must not be empty"),
    ('{"event": "x", "resource": {"prefect.resource.id": "a"}, "related": "no"}', "related must be an array"),
    ('{"event": "{{ body.name }}", "resource": {"prefect.resource.id": "a"}}', "event must not be empty"),
    ('{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}', "CPU"),
    ('{{ "x" * body.n }}', "would make a value"),
])
def test_it_answers_a_template_that_makes_no_event_with_400_records_it_and_emits_a_failure(client, template, reason):
    webhook = hook(template)
    r = client.post(url(webhook), {"n": 10**9}, content_type="application/json")
    assert r.status_code == 400, r.content
    assert reason in r.json()["detail"]
    request = WebhookRequest.objects.get()
    assert (request.status, request.outcome) == (400, "failed")
    assert reason in request.error
    failure = failed_events().get()
    assert failure.resource["prefect.resource.id"] == webhook.resource_id
    assert reason in failure.payload["error"]
    assert failure.payload["body"] == {"n": 10**9}
    assert Event.objects.count() == 1


def test_it_keeps_a_sender_from_breaking_the_json_of_a_preset(client):
    # A quote, a brace and a newline in every value the generic preset reads.
    webhook = hook(presets.GENERIC_JSON)
    hostile = '"}, "event": "evil\n'
    r = client.post(url(webhook), {"event": hostile, "resource": hostile, "extra": {hostile: hostile}}, content_type="application/json")
    assert r.status_code == 204
    event = Event.objects.get()
    assert (event.event, event.resource_id) == (hostile, hostile)


@pytest.mark.parametrize("body, content_type", [
    ('{"event": "nul\\u0000"}', "application/json"),
    (b"\xff\xfe not utf-8", "application/octet-stream"),
    ('{"deep": ' * 200 + "1" + "}" * 200, "application/json"),
    ('{"event": "\\ud800"}', "application/json"),
    ("model=%00&friendly_name=%ff", "application/x-www-form-urlencoded"),
])
def test_it_answers_hostile_bodies_with_204_or_4xx_never_500(client, body, content_type):
    webhook = hook(presets.GENERIC_JSON)
    r = client.post(url(webhook), body, content_type=content_type)
    assert r.status_code in (204, 400), r.content
    assert WebhookRequest.objects.get().status == r.status_code


def test_it_refuses_hostile_header_values_cleanly(client):
    webhook = hook('{"event": "h", "resource": {"prefect.resource.id": {{ headers["X-Evil"]|tojson }}}}')
    r = client.post(url(webhook), "", content_type="text/plain", HTTP_X_EVIL="a\x00b")
    assert r.status_code == 400
    assert "NUL" in r.json()["detail"]
    assert WebhookRequest.objects.get().headers["X-Evil"] == "a\ufffdb"


def test_it_refuses_a_body_over_the_event_size_limit_with_413(client):
    webhook = hook()
    with override_settings(EVENTFEED_MAX_EVENT_BYTES=1000):
        r = client.post(url(webhook), "x" * 1001, content_type="text/plain")
    assert r.status_code == 413
    assert WebhookRequest.objects.get().outcome == "refused"
    assert Event.objects.count() == 0


def test_it_answers_404_for_an_unknown_or_rotated_slug(client):
    webhook = hook()
    old = url(webhook)
    store.rotate(webhook)
    assert client.post(old).status_code == 404
    assert client.post("/hooks/" + "x" * 300).status_code == 404
    assert client.post(url(webhook)).status_code == 204
    assert Event.objects.count() == 1


def test_it_refuses_requests_to_a_disabled_webhook_and_records_them(client):
    webhook = hook(enabled=False)
    r = client.post(url(webhook))
    assert r.status_code == 403
    assert r.json() == {"detail": "This webhook is disabled."}
    assert Event.objects.count() == 0
    assert WebhookRequest.objects.get().outcome == "refused"


def test_it_stores_a_github_delivery_signed_with_the_secret(client):
    webhook = hook(presets.GITHUB, Verification("github", "gh-secret"))
    body = json.dumps({"action": "opened", "repository": {"full_name": "acme/shop"}, "sender": {"login": "octocat"}}).encode()
    delivery = str(uuid.uuid4())
    r = client.post(url(webhook), body, content_type="application/json", HTTP_X_GITHUB_EVENT="pull_request",
                    HTTP_X_GITHUB_DELIVERY=delivery, HTTP_X_HUB_SIGNATURE_256=github_signature("gh-secret", body))
    assert r.status_code == 204, r.content
    event = Event.objects.get()
    assert (event.event, event.resource_id, str(event.id)) == ("github.pull_request.opened", "github.repository.acme/shop", delivery)
    assert event.related[0] == {"prefect.resource.id": "github.user.octocat", "prefect.resource.role": "sender", "prefect.resource.name": "octocat"}


def test_it_refuses_a_bad_signature_with_401_stores_nothing_and_records_it(client):
    webhook = hook(presets.GITHUB, Verification("github", "gh-secret"))
    body = b'{"action": "opened"}'
    r = client.post(url(webhook), body, content_type="application/json", HTTP_X_HUB_SIGNATURE_256=github_signature("guess", body))
    assert r.status_code == 401
    assert "does not match" in r.json()["detail"]
    assert Event.objects.count() == 0  # not even a failure event: the sender is not who it says
    request = WebhookRequest.objects.get()
    assert (request.status, request.outcome) == (401, "refused")


def test_it_stores_a_stripe_event_signed_now_and_refuses_a_replay(client):
    webhook = hook(presets.STRIPE, Verification("stripe", "whsec_stripe"))
    body = json.dumps({"id": "evt_1", "type": "invoice.paid", "livemode": False,
                       "data": {"object": {"id": "in_1", "object": "invoice"}}}).encode()
    now = int(time.time())
    r = client.post(url(webhook), body, content_type="application/json", HTTP_STRIPE_SIGNATURE=stripe_signature("whsec_stripe", body, now))
    assert r.status_code == 204, r.content
    assert Event.objects.get().event == "stripe.invoice.paid"
    replay = stripe_signature("whsec_stripe", body, now - 3600)
    r = client.post(url(webhook), body, content_type="application/json", HTTP_STRIPE_SIGNATURE=replay)
    assert r.status_code == 401
    assert "300 seconds" in r.json()["detail"]


def test_it_stores_a_standard_webhooks_message(client):
    webhook = hook(presets.GENERIC_JSON, Verification("standard-webhooks", STANDARD_SECRET))
    body = b'{"event": "deploy.finished", "resource": "ci.web"}'
    now = int(time.time())
    r = client.post(url(webhook), body, content_type="application/json", HTTP_WEBHOOK_ID="msg_1", HTTP_WEBHOOK_TIMESTAMP=str(now),
                    HTTP_WEBHOOK_SIGNATURE=standard_signature(STANDARD_SECRET, "msg_1", now, body))
    assert r.status_code == 204, r.content
    assert Event.objects.get().resource_id == "ci.web"


def test_it_checks_a_shared_secret_header_and_never_shows_it(client):
    webhook = hook(presets.GENERIC_JSON, Verification("shared-secret-header", "tok", "X-Webhook-Secret"))
    assert client.post(url(webhook), {}, content_type="application/json", HTTP_X_WEBHOOK_SECRET="tok").status_code == 204
    # Not in the event's default payload, the request log or the template's headers.
    hook_with_default_payload = hook(STATIC, Verification("shared-secret-header", "tok2", "X-Token"))
    assert client.get(url(hook_with_default_payload), HTTP_X_TOKEN="tok2").status_code == 204
    assert "tok" not in json.dumps(list(Event.objects.values_list("payload", flat=True)))
    assert "tok" not in json.dumps(list(WebhookRequest.objects.values_list("headers", flat=True)))
    assert client.post(url(webhook), {}, content_type="application/json", HTTP_X_WEBHOOK_SECRET="nope").status_code == 401
    assert client.post(url(webhook), {}, content_type="application/json").status_code == 401


def test_it_keeps_only_the_newest_requests(client):
    webhook = hook()
    for _ in range(store.KEEP_REQUESTS + store.PRUNE_EVERY + 1):
        client.get(url(webhook))
    kept = WebhookRequest.objects.filter(webhook=webhook).count()
    assert store.KEEP_REQUESTS <= kept <= store.KEEP_REQUESTS + store.PRUNE_EVERY
    newest = WebhookRequest.objects.order_by("-id").first()
    assert newest in store.recent_requests(webhook)


def test_it_publishes_the_event_after_commit_like_any_ingest(client, monkeypatch):
    published = []
    monkeypatch.setattr("eventfeed.events.ingest.publish", lambda events: published.extend(events))
    webhook = hook()
    client.get(url(webhook))
    assert [e.event for e in published] == ["model.refreshed"]


def test_it_asks_the_sender_to_retry_when_the_database_is_away(client, monkeypatch):
    from django.db import OperationalError

    webhook = hook()

    def away(events):
        raise OperationalError("connection refused")

    monkeypatch.setattr(store, "ingest", away)
    r = client.get(url(webhook))
    assert r.status_code == 503
    assert r["Retry-After"]
    assert "nothing was stored" in r.json()["detail"]
