"""The webhook pages: list, create from a preset, edit, preview, rotate, disable, delete; per persona."""

from __future__ import annotations

import json

import pytest

from eventfeed.webhooks import presets, store
from eventfeed.webhooks.models import Webhook, WebhookRequest
from eventfeed.webhooks.verification import Verification

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(owner) -> Webhook:
    return store.save(Webhook(name="Shop repo", owner=owner), {"template": presets.GITHUB, "verification": Verification("github", "gh-secret")})


def form_data(**fields) -> dict:
    return {"name": "CI", "description": "", "enabled": "on", "template": presets.GENERIC_JSON,
            "verification_kind": "shared-secret-header", "secret": "tok", "header": "X-Webhook-Secret", **fields}


def pages(webhook):
    return [f"/webhooks/{webhook.id}/", f"/webhooks/{webhook.id}/edit"]


def test_it_sends_anonymous_users_to_sign_in(client, webhook):
    for path in ["/webhooks/", "/webhooks/new", *pages(webhook)]:
        r = client.get(path)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], path
    for path in [f"/webhooks/{webhook.id}/rotate", f"/webhooks/{webhook.id}/delete", f"/webhooks/{webhook.id}/enabled", "/webhooks/preview"]:
        assert client.post(path).status_code == 302
    assert Webhook.objects.get().slug == webhook.slug


def test_it_hides_a_webhook_from_another_user(client, webhook, other_user):
    client.force_login(other_user)
    assert webhook.name not in client.get("/webhooks/").content.decode()
    for path in pages(webhook):
        assert client.get(path).status_code == 404
    for action in ("rotate", "delete", "enabled"):
        assert client.post(f"/webhooks/{webhook.id}/{action}").status_code == 404
    assert Webhook.objects.get().slug == webhook.slug


def test_it_lists_the_owners_webhooks_with_their_urls(owner_client, webhook):
    page = owner_client.get("/webhooks/").content.decode()
    assert webhook.name in page
    assert f"/hooks/{webhook.slug}" in page


def test_it_shows_the_url_and_the_last_requests_but_never_the_secret(owner_client, webhook):
    owner_client.post(f"/hooks/{webhook.slug}", "{}", content_type="application/json")
    page = owner_client.get(f"/webhooks/{webhook.id}/").content.decode()
    assert f"/hooks/{webhook.slug}" in page
    assert "gh-secret" not in page
    assert "The X-Hub-Signature-256 header is missing." in page
    assert "gh-secret" not in owner_client.get(f"/webhooks/{webhook.id}/edit").content.decode()


@pytest.mark.parametrize("preset", list(presets.PRESETS))
def test_it_fills_a_new_webhook_from_each_preset(owner_client, preset):
    page = owner_client.get(f"/webhooks/new?preset={preset}").content.decode()
    assert presets.PRESETS[preset]["hint"].split(" ")[0] in page
    assert f'<option value="{presets.PRESETS[preset]["verification"]}" selected>' in page


def test_it_creates_a_webhook_from_the_form_and_it_receives(owner_client, owner):
    r = owner_client.post("/webhooks/new", form_data())
    assert r.status_code == 302
    webhook = Webhook.objects.get()
    assert (webhook.owner, webhook.kind, webhook.verification["secret"]) == (owner, "shared-secret-header", "tok")
    r = owner_client.post(f"/hooks/{webhook.slug}", {"event": "ci.done", "resource": "ci.web"}, content_type="application/json",
                          HTTP_X_WEBHOOK_SECRET="tok")
    assert r.status_code == 204


@pytest.mark.parametrize("fields, error", [
    ({"name": ""}, "This field is required."),
    ({"template": "{% for %}"}, "is not a valid template"),
    ({"verification_kind": "github", "secret": ""}, "is required for github"),
    ({"verification_kind": "standard-webhooks", "secret": "nope!"}, "whsec_"),
    ({"verification_kind": "shared-secret-header", "header": "Cookie"}, "cannot be Authorization or Cookie"),
    ({"verification_kind": "sha1"}, "Select a valid choice"),
])
def test_it_shows_form_errors_on_the_page(owner_client, fields, error):
    r = owner_client.post("/webhooks/new", form_data(**fields))
    assert r.status_code == 400
    assert error in r.content.decode()
    assert Webhook.objects.count() == 0


def test_it_edits_and_keeps_the_secret_when_left_empty(owner_client, webhook):
    r = owner_client.post(f"/webhooks/{webhook.id}/edit", form_data(name="Renamed", verification_kind="github", secret="", header=""))
    assert r.status_code == 302
    webhook.refresh_from_db()
    assert (webhook.name, webhook.verification) == ("Renamed", {"kind": "github", "secret": "gh-secret"})


def test_it_rotates_disables_and_deletes(owner_client, webhook):
    old = webhook.slug
    owner_client.post(f"/webhooks/{webhook.id}/rotate")
    webhook.refresh_from_db()
    assert webhook.slug != old
    r = owner_client.post(f"/webhooks/{webhook.id}/enabled", {}, HTTP_ACCEPT="application/json")
    assert r.json() == {"enabled": False}
    assert owner_client.post(f"/hooks/{webhook.slug}").status_code == 403
    owner_client.post(f"/webhooks/{webhook.id}/enabled", {"enabled": "on"})
    assert Webhook.objects.get().enabled
    owner_client.post(f"/webhooks/{webhook.id}/delete")
    assert not Webhook.objects.exists()


def preview(client, **body):
    return client.post("/webhooks/preview", json.dumps(body), content_type="application/json")


def test_it_previews_a_template_against_a_kept_request(owner_client, webhook):
    owner_client.post(f"/hooks/{webhook.slug}", {"action": "closed", "repository": {"full_name": "acme/shop"}},
                      content_type="application/json", HTTP_X_GITHUB_EVENT="issues")
    kept = WebhookRequest.objects.get()
    r = preview(owner_client, template=presets.GITHUB, request=kept.id, webhook=str(webhook.id))
    assert r.status_code == 200
    assert r.json()["error"] is None
    assert r.json()["event"]["event"] == "github.issues.closed"
    assert r.json()["event"]["related"][-1]["prefect.resource.id"] == webhook.resource_id


@pytest.mark.parametrize("preset", list(presets.PRESETS))
def test_it_previews_each_preset_against_its_sample(owner_client, preset):
    r = preview(owner_client, template=presets.PRESETS[preset]["template"], sample=preset)
    assert r.json()["error"] is None, r.json()


def test_it_previews_what_a_broken_template_renders_and_why(owner_client):
    r = preview(owner_client, template='{"event": {{ body.event|tojson }}, "resource": {}}', sample="generic")
    assert r.json()["rendered"] == '{"event": "deploy.finished", "resource": {}}'
    assert 'resource["prefect.resource.id"] is required' in r.json()["error"]
    assert "is not a valid template" in preview(owner_client, template="{% endif %}", sample="generic").json()["error"]


def test_it_keeps_another_users_requests_out_of_the_preview(client, webhook, other_user):
    client.post(f"/hooks/{webhook.slug}", "{}", content_type="application/json")
    client.force_login(other_user)
    r = preview(client, template=presets.GITHUB, request=WebhookRequest.objects.get().id)
    assert r.status_code == 400
    assert preview(client, template=presets.GITHUB, sample="github", webhook=str(webhook.id)).status_code == 400


@pytest.mark.parametrize("body", ["{", "[1]", json.dumps({"template": "{}"}), json.dumps({"template": "{}", "request": "1"}),
                                  json.dumps({"template": "{}", "sample": "gitlab"}), json.dumps({"template": "{}", "request": True})])
def test_it_answers_bad_preview_input_with_400(owner_client, body):
    r = owner_client.post("/webhooks/preview", body, content_type="application/json")
    assert r.status_code == 400
    assert r.json()["errors"]
