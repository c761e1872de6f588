"""The real Prefect SDK (`emit_event`) against a live Daphne server serving the test database.

The SDK runs in a subprocess, as it would in a producer: its settings are process-wide and its
events worker is a background thread that must be drained before the process ends.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from eventfeed.events.models import ApiKey, Event
from tests.browser.conftest import serve
from tests.prefect_sdk import require_prefect, run_python, sdk_env

require_prefect()

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


def emit(server: str, key: str, tmp_path, script: str = EMIT, **settings: str):
    settings = settings or {"PREFECT_API_AUTH_STRING": key}
    return run_python(script, sdk_env(tmp_path / "prefect-home", PREFECT_API_URL=f"{server}/api", **settings))


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


ONE = """
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

emit_event(event="acme.keyed", resource={"prefect.resource.id": "acme.keyed.1"})
EventsWorker.drain_all()
"""


def test_it_takes_prefect_api_key_through_the_cloud_clients_header(asgi_server, tmp_path):
    # PREFECT_API_KEY travels on a websocket only to a "Cloud" URL: as `bearer` on the upgrade,
    # with no auth message.
    _, key = ApiKey.create("cloud-style")
    result = emit(asgi_server, key, tmp_path, ONE, PREFECT_API_KEY=key, PREFECT_CLOUD_API_URL=f"{asgi_server}/api")
    assert result.returncode == 0, result.stderr
    assert wait_for(1) == 1


def test_it_takes_prefect_api_key_sent_as_a_custom_header(asgi_server, tmp_path):
    _, key = ApiKey.create("custom header")
    result = emit(asgi_server, key, tmp_path, ONE, PREFECT_API_KEY=key,
                  PREFECT_CLIENT_CUSTOM_HEADERS=json.dumps({"Authorization": f"Bearer {key}"}))
    assert result.returncode == 0, result.stderr
    assert wait_for(1) == 1


def test_it_tells_an_sdk_with_prefect_api_key_alone_what_to_set(asgi_server, tmp_path):
    # The SDK sends PREFECT_API_KEY to a non-Cloud URL on no websocket at all.
    _, key = ApiKey.create("key alone")
    result = emit(asgi_server, key, tmp_path, ONE, PREFECT_API_KEY=key)
    assert "PREFECT_API_AUTH_STRING" in result.stderr, result.stderr
    time.sleep(0.5)
    assert Event.objects.count() == 0


BIG = """
from prefect.events import emit_event
from prefect.events.worker import EventsWorker

emit_event(event="acme.big", resource={"prefect.resource.id": "acme.big.1"}, payload={"blob": "x" * 1_200_000})
EventsWorker.drain_all()
"""


def test_it_stores_a_1_2_mb_event_from_emit_event(asgi_server, tmp_path):
    _, key = ApiKey.create("big")
    result = emit(asgi_server, key, tmp_path, BIG)
    assert result.returncode == 0, result.stderr
    assert wait_for(1) == 1
    assert len(Event.objects.get().payload["blob"]) == 1_200_000


SUBSCRIBE = """
import asyncio, json
from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

async def main():
    f = EventFilter(event=EventNameFilter(prefix=["acme.dist."]), resource=EventResourceFilter(distinct=True))
    names = []
    async with get_events_subscriber(filter=f) as subscriber:
        async for event in subscriber:
            names.append(event.event)
            if len(names) == 2:
                break
    print(json.dumps(names))

asyncio.run(main())
"""


def test_it_serves_the_sdk_subscriber_a_distinct_filter(asgi_server, tmp_path):
    from datetime import timedelta, timezone

    from tests.conftest import make_event, store

    _, key = ApiKey.create("subscriber")
    now = datetime.now(timezone.utc)
    store(make_event("acme.dist.1", "acme.r.1", occurred=now - timedelta(seconds=30)),
          make_event("acme.dist.2", "acme.r.1", occurred=now - timedelta(seconds=20)),
          make_event("acme.dist.3", "acme.r.2", occurred=now - timedelta(seconds=10)))
    result = emit(asgi_server, key, tmp_path, SUBSCRIBE)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["acme.dist.2", "acme.dist.3"]
