"""Throttling over real HTTP against Daphne (the ASGI path, django-axes' async middleware):
sign-in per username and per address, wrong API keys per address. Each client connects from its
own loopback address (127.0.0.x), as separate machines would."""

from __future__ import annotations

import re

import httpx
import pytest
from django.conf import settings

from eventfeed import throttle
from eventfeed.events.models import ApiKey
from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    from tests.browser.conftest import serve

    yield from serve(django_db_blocker)


def client_from(server: str, address: str) -> httpx.Client:
    throttle.forget(address)
    return httpx.Client(base_url=server, transport=httpx.HTTPTransport(local_address=address), timeout=20)


def sign_in(server: str, address: str, username: str, password: str) -> httpx.Response:
    with client_from(server, address) as http:
        page = http.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return http.post("/accounts/login/", data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                         headers={"Referer": f"{server}/accounts/login/"})


def test_it_locks_a_username_out_after_failures_from_any_addresses(server, django_user_model):
    django_user_model.objects.create_user("dana", password="dana-password-1")
    limit = settings.AXES_FAILURE_LIMIT
    for i in range(limit - 1):
        wrong = sign_in(server, f"127.0.1.{i + 1}", "dana", "nope")
        assert wrong.status_code == 200 and "Please enter a correct username and password" in wrong.text
    # The failure that reaches the limit is already answered with the lockout.
    assert sign_in(server, "127.0.1.50", "dana", "nope").status_code == 429
    locked = sign_in(server, "127.0.1.99", "dana", "dana-password-1")
    assert locked.status_code == 429
    assert "Too many failed sign-ins for this username or from this address. Try again in 15 minutes" in locked.text
    assert locked.headers["Retry-After"] == "900"
    assert "sessionid" not in locked.cookies


def test_it_locks_an_address_out_after_failures_for_any_usernames(server, django_user_model):
    django_user_model.objects.create_user("erin", password="erin-password-1")
    for i in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(server, "127.0.2.1", f"guess{i}", "nope").status_code == 200
    assert sign_in(server, "127.0.2.1", "guess-last", "nope").status_code == 429
    assert sign_in(server, "127.0.2.1", "erin", "erin-password-1").status_code == 429
    # Another address is not affected, and the user is not.
    signed_in = sign_in(server, "127.0.2.2", "erin", "erin-password-1")
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"


def test_it_refuses_wrong_api_keys_from_an_address_with_429_and_retry_after(server):
    _, key = ApiKey.create("producer")
    event = make_event("acme.throttle")
    with client_from(server, "127.0.3.1") as guesser:
        for i in range(settings.EVENTFEED_API_KEY_FAILURES):
            wrong = guesser.post("/api/events", json=event, headers={"Authorization": f"Bearer wrong-{i}"})
            assert wrong.status_code == 403, wrong.text
        refused = guesser.post("/api/events", json=event, headers={"Authorization": "Bearer wrong-again"})
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 0 < wait <= settings.EVENTFEED_API_KEY_WINDOW
        assert refused.json() == {"detail": throttle.too_many_wrong_keys_message(wait), "retry_after": wait}
        # Even the right key: the last guess may have been it.
        assert guesser.post("/api/events", json=event, headers={"Authorization": f"Bearer {key}"}).status_code == 429
    with client_from(server, "127.0.3.2") as producer:
        assert producer.post("/api/events", json=event, headers={"Authorization": f"Bearer {key}"}).status_code == 200


async def test_it_closes_a_websocket_door_to_an_address_that_guessed_too_many_keys(settings):
    from channels.testing import WebsocketCommunicator

    from eventfeed.asgi import application

    settings.EVENTFEED_API_KEY_FAILURES = 2
    throttle.forget("127.0.4.1")

    async def close_reason(key: str) -> tuple[int, str]:
        communicator = WebsocketCommunicator(application, "/api/events/out", subprotocols=["prefect"])
        communicator.scope["client"] = ["127.0.4.1", 50000]
        await communicator.connect()
        await communicator.send_json_to({"type": "auth", "token": key})
        closed = await communicator.receive_output(timeout=5)
        await communicator.disconnect()
        return closed["code"], closed.get("reason", "")

    assert (await close_reason("wrong-1"))[0] == 1008
    assert (await close_reason("wrong-2"))[0] == 1008
    code, reason = await close_reason("wrong-3")
    assert code == 1013 and reason.startswith("Too many wrong API keys from this address: try again in ")
