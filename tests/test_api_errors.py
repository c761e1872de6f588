"""Every error under /api/ is JSON: unknown URLs, wrong methods, oversize bodies, unexpected
exceptions. (Database outages are shown against a real stopped PostgreSQL in test_faults_http.)"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_answers_an_unknown_api_url_with_json_404(client, auth):
    r = client.get("/api/no-such-thing", **auth)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/json" and r.json()["detail"]


def test_it_answers_a_wrong_method_with_json_405(client, auth):
    r = client.get("/api/events", **auth)
    assert r.status_code == 405 and "POST" in r.json()["detail"]


def test_it_answers_an_unexpected_error_with_json_500(client, auth, monkeypatch):
    from eventfeed.events import api

    def broken(events):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "ingest", broken)
    client.raise_request_exception = False
    r = client.post("/api/events", json.dumps([make_event()]), content_type="application/json", **auth)
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert "a bug" not in r.json()["detail"]  # no internals leak out


def test_it_keeps_html_errors_for_pages(client):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and not r["Content-Type"].startswith("application/json")


@override_settings(EVENTFEED_MAX_REQUEST_BYTES=1000, DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
async def test_it_answers_an_oversize_body_without_a_length_with_json_413(api_key):
    # A chunked request has no Content-Length: the limit is found while reading the body.
    from channels.testing import HttpCommunicator
    from django.core.asgi import get_asgi_application

    body = json.dumps([make_event(payload={"x": "y" * 5000})]).encode()
    headers = [(b"host", b"localhost"), (b"content-type", b"application/json"), (b"authorization", f"Bearer {api_key}".encode())]
    r = await HttpCommunicator(get_asgi_application(), "POST", "/api/events", body, headers).get_response()
    assert r["status"] == 413, r
    assert "1,000 bytes" in json.loads(r["body"])["detail"]


def test_it_answers_deep_nesting_with_400_naming_it(client, auth):
    event = json.dumps(make_event()).replace('"payload": {}', '"payload": {"a": ' + "[" * 5000 + "]" * 5000 + "}")
    r = client.post("/api/events", event, content_type="application/json", **auth)
    assert r.status_code == 400
    assert "nested too deeply" in r.json()["detail"]
