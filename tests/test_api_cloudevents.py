"""POST /api/events in CloudEvents 1.0's three HTTP modes: structured, batched and binary.

The structured and binary messages are written by the CloudEvents SDK's own encoders, so these
are the bytes a real CloudEvents producer sends.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from cloudevents.core.bindings.http import to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from django.test import override_settings

from eventfeed.events.models import Event, EventResource

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/events"
WHEN = datetime(2026, 11, 21, 9, 30, tzinfo=timezone.utc)


def cloud_event(**attributes) -> CloudEvent:
    data = attributes.pop("data", {"bucket": "invoices", "size": 12345678901234567890})
    base = {"id": "A234-1234-1234", "source": "/mycontext/storage", "type": "com.example.object.created", "time": WHEN}
    return CloudEvent({**base, **attributes}, data)


def send(client, message, auth):
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in message.headers.items() if k.lower() != "content-type"}
    content_type = message.headers.get("content-type") or message.headers.get("Content-Type") or "application/json"
    return client.post(URL, message.body, content_type=content_type, **headers, **auth)


def post(client, body, auth, content_type="application/cloudevents+json", **headers):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(URL, data, content_type=content_type, **headers, **auth)


def test_it_stores_a_structured_cloudevent_mapped_like_prefect_clouds_from_cloud_event(client, auth):
    r = send(client, to_structured(cloud_event(subject="invoices/2026-11.pdf", comexampleext="yes"), JSONFormat()), auth)
    assert r.status_code == 200, r.content
    assert r.json() == {"new": 1, "duplicates": 0}
    event = Event.objects.get()
    assert event.event == "com.example.object.created"
    assert event.occurred == WHEN
    assert event.resource == {"prefect.resource.id": "invoices/2026-11.pdf"}
    # Big integers in data stay exact.
    assert event.payload["data"] == {"bucket": "invoices", "size": 12345678901234567890}
    assert event.payload["cloudevents"] == {
        "id": "A234-1234-1234", "source": "/mycontext/storage", "specversion": "1.0", "type": "com.example.object.created",
        "subject": "invoices/2026-11.pdf", "time": "2026-11-21T09:30:00Z", "comexampleext": "yes",
    }
    assert event.id == uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(["/mycontext/storage", "A234-1234-1234"]))
    assert EventResource.objects.get().resource_id == "invoices/2026-11.pdf"


def test_it_dedupes_a_retried_cloudevent_by_source_and_id(client, auth):
    message = to_structured(cloud_event(), JSONFormat())
    send(client, message, auth)
    assert send(client, message, auth).json() == {"new": 0, "duplicates": 1}
    # The same id from another source is another event.
    assert send(client, to_structured(cloud_event(source="/other"), JSONFormat()), auth).json() == {"new": 1, "duplicates": 0}


def test_it_keeps_an_id_that_is_a_uuid(client, auth):
    ce_id = str(uuid.uuid4())
    send(client, to_structured(cloud_event(id=ce_id), JSONFormat()), auth)
    assert str(Event.objects.get().id) == ce_id


def test_it_uses_the_source_as_resource_and_now_as_occurred_when_absent(client, auth):
    before = datetime.now(timezone.utc)
    body = {"specversion": "1.0", "id": "1", "source": "urn:acme:billing", "type": "acme.paid"}
    assert post(client, body, auth).status_code == 200
    event = Event.objects.get()
    assert event.resource == {"prefect.resource.id": "urn:acme:billing"}
    assert event.occurred >= before
    assert "data" not in event.payload


def test_it_stores_a_binary_mode_cloudevent_from_its_ce_headers(client, auth):
    r = send(client, to_binary(cloud_event(subject="a b/ü", datacontenttype="application/json"), JSONFormat()), auth)
    assert r.status_code == 200, r.content
    event = Event.objects.get()
    # Header values are percent-encoded on the wire and decoded here.
    assert event.resource == {"prefect.resource.id": "a b/ü"}
    assert event.payload["data"] == {"bucket": "invoices", "size": 12345678901234567890}
    assert event.payload["cloudevents"]["datacontenttype"] == "application/json"
    assert event.occurred == WHEN


def test_it_keeps_a_binary_text_body_as_text_and_other_bytes_as_base64(client, auth):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "t1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "acme.text"}
    assert post(client, "hello, world", auth, content_type="text/plain", **headers).status_code == 200
    assert Event.objects.get().payload["data"] == "hello, world"
    r = post(client, b"\xff\x00\xfe", auth, content_type="application/octet-stream", **{**headers, "HTTP_CE_ID": "t2"})
    assert r.status_code == 200
    assert Event.objects.get(event="acme.text", payload__cloudevents__id="t2").payload["data_base64"] == "/wD+"


def test_it_stores_a_batch_all_or_nothing(client, auth):
    batch = [json.loads(to_structured(cloud_event(id=f"e{i}"), JSONFormat()).body) for i in range(3)]
    assert post(client, batch, auth, content_type="application/cloudevents-batch+json").json() == {"new": 3, "duplicates": 0}
    bad = [json.loads(to_structured(cloud_event(id=f"f{i}"), JSONFormat()).body) for i in range(3)]
    del bad[1]["type"]
    bad[2]["time"] = "yesterday"
    r = post(client, bad, auth, content_type="application/cloudevents-batch+json")
    assert r.status_code == 422
    assert {(e["path"], e["rule"]) for e in r.json()["errors"]} == {
        ("[1].type", "is required"),
        ("[2].time", "must be an ISO 8601 date-time such as 2026-11-21T09:30:00Z"),
    }
    assert Event.objects.count() == 3


def test_it_names_every_bad_attribute(client, auth):
    body = {"specversion": "0.3", "id": 7, "source": "", "type": "x" * 1025, "subject": None, "BadExt": "v",
            "ext": {"nested": 1}, "time": "2026-11-21T09:30:00"}
    r = post(client, body, auth)
    assert r.status_code == 422
    paths = {e["path"] for e in r.json()["errors"]}
    assert paths == {"specversion", "id", "source", "subject", "BadExt", "ext", "time"}
    r = post(client, {**body, "specversion": "1.0", "id": "1", "source": "/s", "subject": "s", "ext": 1, "time": "2026-11-21T09:30:00Z",
                      "BadExt": None} | {"badext": True}, auth)
    assert [e["path"] for e in r.json()["errors"]] == ["BadExt"]
    del body["BadExt"]
    r = post(client, {"specversion": "1.0", "id": "1", "source": "/s", "type": "x" * 1025}, auth)
    assert r.json()["errors"] == [{"index": 0, "path": "type", "rule": "is 1025 characters; the limit is 1024 characters"}]


@pytest.mark.parametrize("field, value, path", [
    ("subject", "a\u0000b", "subject"),
    ("type", "\ud800", ""),
    ("data", {"k": "nul\u0000"}, 'data["k"]'),
    ("comexample", "nul\u0000", "comexample"),
    ("source", "/s\u0000", "source"),
    ("id", "1\u0000", "id"),
    ("dataschema", "\u0000", "dataschema"),
])
def test_it_refuses_hostile_text_in_any_field_with_its_path(client, auth, field, value, path):
    body = {"specversion": "1.0", "id": "1", "source": "/s", "type": "acme.t", field: value}
    r = client.post(URL, json.dumps(body), content_type="application/cloudevents+json", **auth)
    assert r.status_code == 422, r.content
    assert r.json()["errors"][0]["path"] == path
    assert Event.objects.count() == 0


def test_it_refuses_a_binary_message_without_required_headers(client, auth):
    r = post(client, "{}", auth, content_type="application/json", HTTP_CE_SPECVERSION="1.0", HTTP_CE_TYPE="t")
    assert r.status_code == 422
    assert {e["path"] for e in r.json()["errors"]} == {"ce-id", "ce-source"}


def test_it_refuses_a_binary_json_body_that_is_not_json(client, auth):
    headers = {"HTTP_CE_SPECVERSION": "1.0", "HTTP_CE_ID": "1", "HTTP_CE_SOURCE": "/s", "HTTP_CE_TYPE": "t"}
    r = post(client, "{not json", auth, content_type="application/json", **headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "body"


@pytest.mark.parametrize("body, content_type, status", [
    ("", "application/cloudevents+json", 400),
    ("{", "application/cloudevents+json", 400),
    (b"\xff", "application/cloudevents+json", 400),
    ("[]", "application/cloudevents-batch+json", 400),
    ('{"id": "1"}', "application/cloudevents-batch+json", 400),
    ("[1]", "application/cloudevents-batch+json", 422),
    ('"text"', "application/cloudevents+json", 422),
])
def test_it_answers_bad_bodies_with_a_4xx_that_says_why(client, auth, body, content_type, status):
    r = post(client, body, auth, content_type=content_type)
    assert r.status_code == status
    assert r.json()["detail"]


@override_settings(EVENTFEED_MAX_BATCH=2)
def test_it_applies_the_batch_limit(client, auth):
    batch = [{"specversion": "1.0", "id": str(i), "source": "/s", "type": "t"} for i in range(3)]
    assert post(client, batch, auth, content_type="application/cloudevents-batch+json").status_code == 413


@override_settings(EVENTFEED_MAX_REQUEST_BYTES=100)
def test_it_applies_the_request_size_limit(client, auth):
    body = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "data": "x" * 200}
    assert post(client, body, auth).status_code == 413


def test_it_needs_the_same_api_key_as_prefect_events(client, owner):
    body = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    assert post(client, body, {}).status_code == 401
    assert post(client, body, {"HTTP_AUTHORIZATION": "Bearer wrong"}).status_code == 403
    client.force_login(owner)
    assert post(client, body, {}).status_code == 401
    assert Event.objects.count() == 0
