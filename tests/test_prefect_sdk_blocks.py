"""Prefect's block classes (SlackWebhook, Webhook) and its channel actions (SendNotification,
CallWebhook) through the real SDK against a live Daphne, the actions run by that server."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

from eventfeed.blocks.models import BlockDocument, BlockSchema
from eventfeed.events.models import ApiKey
from tests.browser.conftest import serve
from tests.conftest import make_event
from tests.prefect_sdk import require_prefect, run_python, sdk_env
from tests.test_automations_actions import Recorder

require_prefect()

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def asgi_server(django_db_setup, django_db_blocker):
    # The server's actions call the recorder on loopback, which only an operator's allowlist opens.
    before = os.environ.get("EVENTFEED_OUTBOUND_ALLOW")
    os.environ["EVENTFEED_OUTBOUND_ALLOW"] = "127.0.0.1"
    try:
        yield from serve(django_db_blocker)
    finally:
        if before is None:
            os.environ.pop("EVENTFEED_OUTBOUND_ALLOW")
        else:
            os.environ["EVENTFEED_OUTBOUND_ALLOW"] = before


@pytest.fixture
def recorder():
    import threading
    from http.server import HTTPServer

    Recorder.requests, Recorder.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SCRIPT = """
import json, sys
from prefect.automations import Automation
from prefect.blocks.notifications import SlackWebhook
from prefect.blocks.webhook import Webhook
from prefect.events.actions import CallWebhook, SendNotification
from prefect.events.schemas.automations import EventTrigger

slack_id = SlackWebhook(url="https://hooks.slack.com/services/T0/B0/hush").save("ops")
SlackWebhook(url="https://hooks.slack.com/services/T0/B0/hush2").save("ops", overwrite=True)
loaded = SlackWebhook.load("ops")
assert loaded.url.get_secret_value() == "********", loaded.url

hook_id = Webhook(method="POST", url="RECORDER/hook", allow_private_urls=True).save("hook")
notify_id = Webhook(method="POST", url="RECORDER/notify", allow_private_urls=True).save("notify-hook")
automation = Automation(
    name="through channels",
    trigger=EventTrigger(expect={"acme.order.shipped"}, match={"prefect.resource.id": "acme.*"}),
    actions=[CallWebhook(block_document_id=hook_id, payload='{"order": {{ event.resource.id|tojson }}}'),
             SendNotification(block_document_id=notify_id, subject="{{ event.event }}", body="order {{ event.resource.id }}")],
).create()
read = Automation.read(id=automation.id)
assert [type(a).__name__ for a in read.actions] == ["CallWebhook", "SendNotification"], read.actions
from prefect import get_client
with get_client(sync_client=True) as client:
    assert {d.name for d in client.read_block_documents()} >= {"ops", "hook", "notify-hook"}
print(json.dumps({"slack": str(slack_id), "automation": str(automation.id)}))
"""


def test_it_saves_loads_and_runs_prefects_channel_blocks(asgi_server, recorder, tmp_path):
    _, key = ApiKey.create("blocks")
    env = sdk_env(tmp_path / "home", PREFECT_API_URL=f"{asgi_server}/api", PREFECT_API_AUTH_STRING=key)
    result = run_python(SCRIPT.replace("RECORDER", recorder), env)
    assert result.returncode == 0, result.stderr
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    slack = BlockDocument.objects.get(pk=ids["slack"])
    assert slack.data["url"].endswith("/hush2")
    # The SDK found its schema by checksum the second time: one schema per block class.
    assert BlockSchema.objects.filter(block_type__slug="slack-webhook").count() == 1

    # Sent to the server, whose evaluator hears of what it stores itself.
    sent = httpx.post(f"{asgi_server}/api/events", json=[make_event("acme.order.shipped", "acme.order.77")],
                      headers={"Authorization": f"Bearer {key}"})
    assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 60
    while len(Recorder.requests) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    by_path = {r["path"]: json.loads(r["body"]) for r in Recorder.requests}
    assert by_path["/hook"] == {"order": "acme.order.77"}
    assert by_path["/notify"] == {"subject": "acme.order.shipped", "body": "order acme.order.77"}
