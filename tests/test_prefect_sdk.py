"""The real Prefect SDK (`emit_event`) against a live Daphne server serving the test database.

The SDK runs in a subprocess, as it would in a producer: its settings are process-wide and its
events worker is a background thread that must be drained before the process ends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from eventfeed.events.models import ApiKey, Event
from tests.browser.conftest import serve

if importlib.util.find_spec("prefect") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("prefect is not installed: install the test extra (pip install -e '.[test]')")
    pytest.skip("prefect is not installed (pip install -e '.[test]')", allow_module_level=True)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, django_db_blocker):
    """A live server for this module only: each Daphne process also runs an automation
    evaluator, which later tests should not find still listening."""
    yield from serve(django_db_blocker)

# Emits a few events the way a producer would, then prints them as the SDK built them.
EMIT = """
import json
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

events = []
first = emit_event(
    event="acme.order.created",
    resource={"prefect.resource.id": "acme.order.42", "prefect.resource.name": "Order #42", "acme.channel": "web"},
    related=[
        {"prefect.resource.id": "acme.customer.vip-1", "prefect.resource.role": "customer", "acme.tier": "vip"},
        {"prefect.resource.id": "prefect.tag.sdk", "prefect.resource.role": "tag"},
    ],
    payload={"total": 129.5, "items": [{"sku": "A-1", "qty": 2}], "note": "caf\\u00e9 \\u2603"},
)
events.append(first)
events.append(emit_event(
    event="acme.order.paid",
    resource={"prefect.resource.id": "acme.order.42"},
    payload={"method": "card"},
    follows=first,
))
for i in range(3):
    events.append(emit_event(event="myteam.model.trained", resource={"prefect.resource.id": f"myteam.model.m{i}"}))
EventsWorker.drain_all()
print(json.dumps([e.model_dump(mode="json") for e in events]))
"""


def emit(server: str, key: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_API_URL=f"{server}/api",
        PREFECT_API_AUTH_STRING=key,
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        # Never start a temporary Prefect server of its own, never phone home.
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
        DO_NOT_TRACK="1",
    )
    return subprocess.run([sys.executable, "-c", EMIT], env=env, capture_output=True, text=True, timeout=120)


def wait_for(count: int, timeout: float = 15) -> int:
    """The websocket door stores frames after reading them; the SDK's drain does not wait for that."""
    deadline = time.monotonic() + timeout
    while (stored := Event.objects.count()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return stored


def test_it_stores_what_emit_event_sends_unchanged(asgi_server, tmp_path):
    _, key = ApiKey.create("prefect sdk")
    result = emit(asgi_server, key, tmp_path)
    assert result.returncode == 0, result.stderr
    sent = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(sent) == 5
    assert wait_for(5) == 5

    for event in sent:
        stored = Event.objects.get(id=event["id"])
        assert stored.event == event["event"]
        assert stored.resource == event["resource"]
        assert stored.related == event["related"]
        assert stored.payload == event["payload"]
        assert (str(stored.follows) if stored.follows else None) == event["follows"]
        assert stored.occurred == datetime.fromisoformat(event["occurred"].replace("Z", "+00:00"))
    paid = Event.objects.get(event="acme.order.paid")
    assert str(paid.follows) == sent[0]["id"]
    created = Event.objects.get(event="acme.order.created")
    assert created.related[0] == {"prefect.resource.id": "acme.customer.vip-1", "prefect.resource.role": "customer", "acme.tier": "vip"}
    assert created.payload["note"] == "café ☃"


def test_it_stores_nothing_from_the_sdk_with_a_wrong_key(asgi_server, tmp_path):
    ApiKey.create("the real one")
    result = emit(asgi_server, "evf_not-a-real-key", tmp_path)
    assert "Unable to authenticate" in result.stderr, result.stderr
    time.sleep(1)
    assert Event.objects.count() == 0


def test_it_stores_nothing_from_the_sdk_with_a_revoked_key(asgi_server, tmp_path):
    api_key, key = ApiKey.create("old")
    ApiKey.objects.filter(pk=api_key.pk).update(revoked=api_key.created)
    result = emit(asgi_server, key, tmp_path)
    assert "Unable to authenticate" in result.stderr, result.stderr
    time.sleep(1)
    assert Event.objects.count() == 0
