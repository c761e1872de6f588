"""/api/webhooks/: Prefect Cloud's webhook API, per persona, with bad input on every endpoint."""

from __future__ import annotations

import json

import pytest

from eventfeed.events.models import ApiKey
from eventfeed.webhooks.models import Webhook

pytestmark = pytest.mark.django_db

STATIC = '{"event": "model.refreshed", "resource": {"prefect.resource.id": "product.models.recommendations"}}'


@pytest.fixture
def owner_auth(owner) -> dict:
    _, raw = ApiKey.create("alice's key", created_by=owner)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def other_auth(other_user) -> dict:
    _, raw = ApiKey.create("bob's key", created_by=other_user)
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def send(client, method, path, body=None, auth=None):
    if method == "get":
        return client.get(path, **(auth or {}))
    data = body if isinstance(body, (str, bytes)) else json.dumps(body) if body is not None else ""
    return getattr(client, method)(path, data, content_type="application/json", **(auth or {}))


def create(client, auth, **fields):
    body = {"name": "Models", "template": STATIC, **fields}
    r = send(client, "post", "/api/webhooks/", body, auth)
    assert r.status_code == 201, r.content
    return r.json()


def test_it_creates_a_webhook_in_prefect_clouds_shape(client, owner_auth, owner):
    made = create(client, owner_auth, description="Models", verification={"kind": "github", "secret": "s3cret"})
    assert set(made) >= {"id", "name", "description", "enabled", "template", "slug", "verification"}
    assert made["enabled"] is True
    assert made["verification"] == {"kind": "github", "secret_set": True}
    assert len(made["slug"]) >= 20
    assert Webhook.objects.get().owner == owner
    assert send(client, "get", f"/api/webhooks/{made['id']}", auth=owner_auth).json() == made


def test_it_never_returns_a_secret(client, owner_auth):
    made = create(client, owner_auth, verification={"kind": "stripe", "secret": "whsec_abc"})
    for r in (send(client, "get", "/api/webhooks/", auth=owner_auth), send(client, "get", f"/api/webhooks/{made['id']}", auth=owner_auth),
              send(client, "post", "/api/webhooks/filter", auth=owner_auth)):
        assert "whsec_abc" not in r.content.decode()


def test_it_lists_only_the_callers_webhooks(client, owner_auth, other_auth, auth):
    mine = create(client, owner_auth)
    theirs = create(client, other_auth, name="Bob's")
    cli = create(client, auth, name="Made on the command line")
    assert [w["id"] for w in send(client, "get", "/api/webhooks/", auth=owner_auth).json()] == [mine["id"]]
    assert [w["id"] for w in send(client, "post", "/api/webhooks/filter", auth=other_auth).json()] == [theirs["id"]]
    assert [w["id"] for w in send(client, "get", "/api/webhooks/", auth=auth).json()] == [cli["id"]]


def test_it_hides_another_users_webhook_as_not_found(client, owner_auth, other_auth):
    made = create(client, owner_auth)
    path = f"/api/webhooks/{made['id']}"
    assert send(client, "get", path, auth=other_auth).status_code == 404
    assert send(client, "patch", path, {"enabled": False}, other_auth).status_code == 404
    assert send(client, "delete", path, auth=other_auth).status_code == 404
    assert send(client, "post", path + "/rotate", auth=other_auth).status_code == 404
    assert Webhook.objects.get().enabled is True


def test_it_refuses_anonymous_callers(client, owner_auth, owner):
    made = create(client, owner_auth)
    client.force_login(owner)  # a browser session is not an API key
    for method, path in [("get", "/api/webhooks/"), ("post", "/api/webhooks/"), ("get", f"/api/webhooks/{made['id']}"),
                         ("patch", f"/api/webhooks/{made['id']}"), ("delete", f"/api/webhooks/{made['id']}"),
                         ("post", f"/api/webhooks/{made['id']}/rotate"), ("post", "/api/webhooks/filter")]:
        assert send(client, method, path, {}).status_code == 401, path


def test_it_patches_fields_and_keeps_the_secret(client, owner_auth):
    made = create(client, owner_auth, verification={"kind": "github", "secret": "kept"})
    path = f"/api/webhooks/{made['id']}"
    assert send(client, "patch", path, {"enabled": False, "description": "off for now"}, owner_auth).status_code == 204
    # What the client read, sent back: the secret stays.
    read = send(client, "get", path, auth=owner_auth).json()
    assert send(client, "put", path, {k: read[k] for k in ("name", "description", "template", "verification", "slug", "id")},
                owner_auth).status_code == 204
    webhook = Webhook.objects.get()
    assert (webhook.enabled, webhook.description, webhook.verification["secret"]) == (False, "off for now", "kept")


def test_it_rotates_the_slug(client, owner_auth):
    made = create(client, owner_auth)
    r = send(client, "post", f"/api/webhooks/{made['id']}/rotate", auth=owner_auth)
    assert r.status_code == 200
    assert r.json()["slug"] != made["slug"]
    assert client.get(f"/hooks/{made['slug']}").status_code == 404
    assert client.get(f"/hooks/{r.json()['slug']}").status_code == 204


def test_it_deletes(client, owner_auth):
    made = create(client, owner_auth)
    assert send(client, "delete", f"/api/webhooks/{made['id']}", auth=owner_auth).status_code == 204
    assert client.get(f"/hooks/{made['slug']}").status_code == 404
    assert send(client, "get", f"/api/webhooks/{made['id']}", auth=owner_auth).status_code == 404


@pytest.mark.parametrize("body, path", [
    ({"template": STATIC}, "name"),
    ({"name": "x"}, "template"),
    ({"name": "", "template": STATIC}, "name"),
    ({"name": "x" * 201, "template": STATIC}, "name"),
    ({"name": 5, "template": STATIC}, "name"),
    ({"name": "a\u0000b", "template": STATIC}, "name"),
    ({"name": "x", "template": "{% if %}"}, "template"),
    ({"name": "x", "template": "{% include 'base.html' %}"}, "template"),
    ({"name": "x", "template": '{{ "a" * 100000000 }}'}, "template"),
    ({"name": "x", "template": "   "}, "template"),
    ({"name": "x", "template": STATIC, "enabled": "yes"}, "enabled"),
    ({"name": "x", "template": STATIC, "description": ["no"]}, "description"),
    ({"name": "x", "template": STATIC, "slug": "mine"}, "slug"),
    ({"name": "x", "template": STATIC, "colour": "red"}, "colour"),
    ({"name": "x", "template": STATIC, "verification": {"kind": "github"}}, "verification.secret"),
    ({"name": "x", "template": STATIC, "verification": {"kind": "md5", "secret": "x"}}, "verification.kind"),
    ([1, 2], ""),
])
def test_it_answers_bad_input_with_422_naming_the_field(client, owner_auth, body, path):
    r = send(client, "post", "/api/webhooks/", body, owner_auth)
    assert r.status_code == 422, r.content
    assert path in [e["path"] for e in r.json()["errors"]]
    assert Webhook.objects.count() == 0


def test_it_answers_bad_patches_and_bodies_on_the_item(client, owner_auth):
    made = create(client, owner_auth)
    path = f"/api/webhooks/{made['id']}"
    assert send(client, "patch", path, {"enabled": None}, owner_auth).status_code == 422
    assert send(client, "put", path, {"name": "only a name"}, owner_auth).status_code == 422
    assert send(client, "patch", path, "{not json", owner_auth).status_code == 400
    assert send(client, "patch", path, "", owner_auth).status_code == 400
    assert send(client, "get", "/api/webhooks/not-a-uuid", auth=owner_auth).status_code == 404
    assert send(client, "post", "/api/webhooks/not-a-uuid/rotate", auth=owner_auth).status_code == 404
    assert send(client, "post", path, {}, owner_auth).status_code == 405
    assert client.post("/api/webhooks/", "{}", content_type="text/plain", **owner_auth).status_code == 415
