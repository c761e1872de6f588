"""Every websocket route refuses a browser page from another site (a foreign Origin), accepts the
site's own pages and programs that send no Origin (the Prefect SDK). Each route is tried with
credentials it accepts, so that only the Origin can make it refuse."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from eventfeed.asgi import application, websocket_routes
from eventfeed.events.models import ApiKey
from eventfeed.origin import origin_allowed

pytestmark = pytest.mark.django_db(transaction=True)

ROUTES = ["/" + str(route.pattern) for route in websocket_routes]


@database_sync_to_async
def credentials(path: str, user) -> list[tuple[bytes, bytes]]:
    """What the route needs to accept: a session for the browser's sockets, a key for the API doors."""
    if path.startswith("/ws/"):
        client = Client()
        client.force_login(user)
        return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    _, key = ApiKey.create("origin test")
    return [(b"authorization", f"Bearer {key}".encode())]


async def opens(path: str, headers: list) -> bool:
    communicator = WebsocketCommunicator(application, path, headers=[(b"host", b"testserver"), *headers],
                                         subprotocols=["prefect"] if path.startswith("/api/") else None)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return connected


def test_it_tries_every_route():
    assert set(ROUTES) >= {"/ws/feed", "/ws/notifications", "/api/events/in", "/api/events/out"}


@pytest.mark.parametrize("path", ROUTES)
async def test_it_refuses_a_foreign_origin_on_every_route(path, owner):
    auth = await credentials(path, owner)
    assert await opens(path, [(b"origin", b"http://testserver"), *auth])
    assert not await opens(path, [(b"origin", b"http://evil.example"), *auth])
    assert not await opens(path, [(b"origin", b"http://testserver.evil.example"), *auth])
    assert not await opens(path, [(b"origin", b"null"), *auth])


@pytest.mark.parametrize("path", ROUTES)
async def test_it_accepts_a_program_that_sends_no_origin(path, owner):
    assert await opens(path, await credentials(path, owner))


def test_it_accepts_allowed_hosts_and_csrf_trusted_origins(settings):
    settings.ALLOWED_HOSTS = [".example.com"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://feed.corp.example"]
    assert origin_allowed("https://eventfeed.example.com") and origin_allowed("http://example.com:8000")
    assert origin_allowed("https://feed.corp.example")
    assert not origin_allowed("http://feed.corp.example") and not origin_allowed("https://example.com.evil.example")
    assert not origin_allowed("file://") and not origin_allowed("")
