"""/api/events/in: Prefect's websocket ingest protocol, through WebsocketCommunicator."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from eventfeed.asgi import application
from eventfeed.events.models import Event, IngestProblem
from tests.conftest import make_event

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(subprotocols=("prefect",)):
    communicator = WebsocketCommunicator(application, "/api/events/in", subprotocols=list(subprotocols))
    connected, subprotocol = await communicator.connect()
    assert connected
    return communicator, subprotocol


async def authenticate(communicator, token):
    await communicator.send_json_to({"type": "auth", "token": token})
    return await communicator.receive_json_from()


@database_sync_to_async
def stored_names():
    return list(Event.objects.order_by("occurred").values_list("event", flat=True))


async def test_it_completes_prefects_handshake(api_key):
    communicator, subprotocol = await connect()
    try:
        assert subprotocol == "prefect"
        assert await authenticate(communicator, api_key) == {"type": "auth_success"}
    finally:
        await communicator.disconnect()


async def test_it_stores_frames_in_order_without_replying(api_key, now):
    # Later frames carry earlier times, and the last repeats the first's id: stored in frame
    # order, the first of the two wins, and no frame is stored after a later one.
    from datetime import timedelta

    frames = [make_event(f"t.event.{i}", occurred=now - timedelta(seconds=i)) for i in range(5)]
    frames.append(dict(frames[0], event="t.event.repeat"))
    communicator, _ = await connect()
    try:
        await authenticate(communicator, api_key)
        for frame in frames:
            await communicator.send_to(text_data=json.dumps(frame))
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()
    stored = await database_sync_to_async(lambda: {str(e.id): (e.event, e.received) for e in Event.objects.all()})()
    assert [stored[f["id"]][0] for f in frames[:5]] == [f"t.event.{i}" for i in range(5)]
    received = [stored[f["id"]][1] for f in frames[:5]]
    assert received == sorted(received)


async def test_it_answers_a_bad_frame_and_keeps_the_connection(api_key):
    communicator, _ = await connect()
    try:
        await authenticate(communicator, api_key)
        bad = make_event()
        del bad["resource"]["prefect.resource.id"]
        await communicator.send_to(text_data=json.dumps(make_event("t.before")))
        await communicator.send_to(text_data=json.dumps(bad))
        await communicator.send_to(text_data="{not json")
        await communicator.send_to(text_data=json.dumps(make_event("t.after")))
        first = await communicator.receive_json_from(timeout=3)
        second = await communicator.receive_json_from(timeout=3)
        assert first == {"type": "error", "frame": 1, "errors": [{"path": 'resource["prefect.resource.id"]', "rule": "is required"}]}
        assert second["frame"] == 2 and "not valid JSON" in second["errors"][0]["rule"]
    finally:
        await communicator.disconnect()
    assert sorted(await stored_names()) == ["t.after", "t.before"]
    assert await database_sync_to_async(IngestProblem.objects.count)() == 2


async def test_it_closes_with_1008_on_a_wrong_token():
    communicator, _ = await connect()
    await communicator.send_json_to({"type": "auth", "token": "evf_wrong"})
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close" and output["code"] == 1008
    await communicator.disconnect()


async def test_it_closes_with_1008_on_a_missing_token(db):
    communicator, _ = await connect()
    await communicator.send_json_to({"type": "auth", "token": None})
    output = await communicator.receive_output(timeout=3)
    assert output["code"] == 1008
    await communicator.disconnect()


async def test_it_closes_with_1008_when_the_first_message_is_not_auth(api_key):
    communicator, _ = await connect()
    await communicator.send_to(text_data=json.dumps(make_event()))
    output = await communicator.receive_output(timeout=3)
    assert output["code"] == 1008 and output.get("reason") == "Expected 'auth' message"
    await communicator.disconnect()
    assert await stored_names() == []


async def test_it_speaks_the_same_protocol_without_the_subprotocol(api_key):
    communicator, subprotocol = await connect(subprotocols=())
    try:
        assert subprotocol is None
        assert await authenticate(communicator, api_key) == {"type": "auth_success"}
        await communicator.send_to(text_data=json.dumps(make_event("t.legacy")))
    finally:
        await communicator.disconnect()
    assert await stored_names() == ["t.legacy"]


async def test_it_counts_a_resent_event_once(api_key):
    event = make_event("t.once")
    communicator, _ = await connect()
    try:
        await authenticate(communicator, api_key)
        for _ in range(3):
            await communicator.send_to(text_data=json.dumps(event))
    finally:
        await communicator.disconnect()
    assert await stored_names() == ["t.once"]


async def test_it_takes_events_after_an_authorization_header_without_an_auth_message(api_key, now):
    # Prefect's Cloud events client (PREFECT_API_KEY with a Cloud URL) sends `bearer <key>` on
    # the upgrade and its first frame is already an event.
    communicator = WebsocketCommunicator(application, "/api/events/in", subprotocols=["prefect"],
                                         headers=[(b"authorization", f"bearer {api_key}".encode())])
    await communicator.connect()
    try:
        await communicator.send_to(text_data=json.dumps(make_event("t.cloud.1")))
        await communicator.send_to(text_data=json.dumps(make_event("t.cloud.2")))
    finally:
        await communicator.disconnect()
    assert await stored_names() == ["t.cloud.1", "t.cloud.2"]


async def test_it_refuses_a_wrong_key_in_the_authorization_header(api_key):
    communicator = WebsocketCommunicator(application, "/api/events/in", subprotocols=["prefect"],
                                         headers=[(b"authorization", b"bearer evf_wrong")])
    await communicator.connect()
    await communicator.send_to(text_data=json.dumps(make_event("t.never")))
    output = await communicator.receive_output(timeout=3)
    assert output["type"] == "websocket.close" and output["code"] == 1008
    await communicator.disconnect()
    assert await stored_names() == []


async def test_it_answers_a_checkpoint_only_after_the_frames_before_it_are_stored(api_key):
    # Daphne hands a ping over as websocket.checkpoint (eventfeed.serving); the SDK counts
    # every event sent before the pong as delivered.
    frames = [make_event(f"t.checkpoint.{i}") for i in range(50)]
    communicator, _ = await connect()
    try:
        await authenticate(communicator, api_key)
        for frame in frames:
            await communicator.send_to(text_data=json.dumps(frame))
        await communicator.send_input({"type": "websocket.checkpoint", "payload": b"cp-1"})
        pong = await communicator.receive_output(timeout=5)
        stored_at_pong = len(await stored_names())
    finally:
        await communicator.disconnect()
    assert pong == {"type": "websocket.pong", "payload": b"cp-1"}
    assert stored_at_pong == len(frames)


async def test_it_answers_a_frame_nested_too_deeply_and_stores_the_rest_of_its_batch(api_key):
    # msgspec's RecursionError used to end the flush task: the whole batch vanished, silently.
    deep = json.dumps(make_event("t.deep")).replace('"payload": {}', '"payload": {"a": ' + "[" * 3000 + "]" * 3000 + "}")
    communicator, _ = await connect()
    try:
        await authenticate(communicator, api_key)
        await communicator.send_to(text_data=json.dumps(make_event("t.before")))
        await communicator.send_to(text_data=deep)
        await communicator.send_to(text_data=json.dumps(make_event("t.after")))
        error = await communicator.receive_json_from(timeout=5)
    finally:
        await communicator.disconnect()
    assert error["frame"] == 1 and "nested too deeply" in error["errors"][0]["rule"]
    assert sorted(await stored_names()) == ["t.after", "t.before"]
    problem = await database_sync_to_async(IngestProblem.objects.get)()
    assert "nested too deeply" in problem.errors[0]["rule"] and problem.frame.startswith("{")
