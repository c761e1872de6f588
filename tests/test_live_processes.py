"""The live push across processes: with REDIS_URL, an event ingested by one Daphne process
reaches a subscriber connected to another, through channels-redis."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import websockets
from django.conf import settings

from eventfeed.events.models import ApiKey
from tests.browser.conftest import serve
from tests.conftest import make_event

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL: the in-memory layer is one process's"),
]


@pytest.fixture(scope="module")
def two_servers(django_db_setup, django_db_blocker):
    a, b = serve(django_db_blocker), serve(django_db_blocker)
    yield next(a), next(b)
    for server in (a, b):
        next(server, None)


def post(base: str, key: str, events: list[dict]) -> None:
    request = urllib.request.Request(base + "/api/events", json.dumps(events).encode(),
                                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_it_delivers_an_event_ingested_by_one_process_to_a_subscriber_of_the_other(two_servers):
    a, b = two_servers
    assert a != b
    _, key = ApiKey.create("two-processes")
    other, wanted = make_event("t.elsewhere.x"), make_event("t.across.x")

    async def run() -> list[str]:
        async with websockets.connect(b.replace("http", "ws") + "/api/events/out", subprotocols=["prefect"]) as ws:
            await ws.send(json.dumps({"type": "auth", "token": key}))
            assert json.loads(await ws.recv())["type"] == "auth_success"
            await ws.send(json.dumps({"type": "filter", "filter": {"event": {"prefix": ["t.across."]}}, "backfill": False}))
            await asyncio.sleep(0.5)  # the subscription is registered before the events are posted
            await asyncio.to_thread(post, a, key, [other, wanted])
            received = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return [received["event"]["id"]]

    assert asyncio.run(run()) == [wanted["id"]]
